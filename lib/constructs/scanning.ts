// The scanning engines as an internal ECS service that the scan Lambda calls inside the VPC:
// clamd with freshclam keeping the virus definitions current, and rspamd. Found through Cloud
// Map (`scanning.outpost.internal`); reachable only from the security groups given access.
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import { Construct } from 'constructs';

export const CLAMD_PORT = 3310;
export const RSPAMD_PORT = 11333;

export interface ScanningProps {
  readonly cluster: ecs.ICluster;
  readonly namespace: servicediscovery.IPrivateDnsNamespace;
  /** The ClamAV image (runs freshclam and clamd). Default: `clamav/clamav:1.4`. */
  readonly clamavImage?: string;
  /** The rspamd image. Default: `rspamd/rspamd:3.11`. */
  readonly rspamdImage?: string;
  /** Tasks (each holds clamd's whole signature set in memory, ~1.5 GB). Default: 2. */
  readonly desiredCount?: number;
}

export class Scanning extends Construct {
  readonly service: ecs.FargateService;
  readonly securityGroup: ec2.SecurityGroup;
  /** `host:port` of clamd, as OUTPOST_CLAMD takes it. */
  readonly clamdAddress: string;
  /** rspamd's base URL, as OUTPOST_RSPAMD_URL takes it. */
  readonly rspamdUrl: string;

  constructor(scope: Construct, id: string, props: ScanningProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS });
    // clamd keeps two copies of the signatures in memory while it reloads them after freshclam.
    const task = new ecs.FargateTaskDefinition(this, 'Task', { cpu: 2048, memoryLimitMiB: 6144 });
    task.addContainer('clamav', {
      image: ecs.ContainerImage.fromRegistry(props.clamavImage ?? 'clamav/clamav:1.4'),
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'clamav', logGroup }),
      portMappings: [{ containerPort: CLAMD_PORT }],
      environment: { CLAMAV_NO_MILTERD: 'true' },
      // The image's own check: clamd answers PING. The first start downloads the definitions.
      healthCheck: { command: ['CMD-SHELL', 'clamdcheck.sh'], interval: Duration.seconds(30), startPeriod: Duration.minutes(5), retries: 3 },
    });
    task.addContainer('rspamd', {
      image: ecs.ContainerImage.fromRegistry(props.rspamdImage ?? 'rspamd/rspamd:3.11'),
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'rspamd', logGroup }),
      portMappings: [{ containerPort: RSPAMD_PORT }],
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', { vpc: props.cluster.vpc, description: 'Outpost scanning engines (clamd, rspamd)', allowAllOutbound: true });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster: props.cluster,
      taskDefinition: task,
      desiredCount: props.desiredCount ?? 2,
      securityGroups: [this.securityGroup],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      cloudMapOptions: { cloudMapNamespace: props.namespace, name: 'scanning', dnsTtl: Duration.seconds(10) },
      circuitBreaker: { rollback: true },
      minHealthyPercent: 100,
    });
    this.clamdAddress = `scanning.${props.namespace.namespaceName}:${CLAMD_PORT}`;
    this.rspamdUrl = `http://scanning.${props.namespace.namespaceName}:${RSPAMD_PORT}`;
  }

  /** Lets `peer` (the scan Lambda, the bounce Lambda) reach clamd and rspamd. */
  allowFrom(peer: ec2.ISecurityGroup, description: string): void {
    this.securityGroup.addIngressRule(peer, ec2.Port.tcp(CLAMD_PORT), `${description}: clamd`);
    this.securityGroup.addIngressRule(peer, ec2.Port.tcp(RSPAMD_PORT), `${description}: rspamd`);
  }
}
