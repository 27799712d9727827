// The SMTP ingress: a Network Load Balancer on 587 (STARTTLS submission), 465 (implicit TLS) and
// 25 (bounces) in front of an ECS service running the smtp-ec2 image on high ports (the
// container runs as a non-root user). The NLB preserves the client's IP (no PROXY protocol:
// smtp-server parses only v1), which admission needs for reputation, IP users and limits.
// Tasks scale on CPU and on the SMTP sessions each holds.
import { Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE } from '../../lambdas/metric-names.js';

/** Public port → the container's port. */
export const SMTP_PORTS = [
  { name: 'submission', port: 587, containerPort: 2587 },
  { name: 'submissions', port: 465, containerPort: 2465 },
  { name: 'bounce', port: 25, containerPort: 2525 },
] as const;
/** The container's HTTP port: `/healthz` for the target groups. */
export const HEALTH_PORT = 8080;

/** The metric the ingress publishes (EMF): SMTP sessions open in one task. */
export const ACTIVE_SESSIONS_METRIC = { namespace: METRICS_NAMESPACE, metricName: METRIC.activeSessions, dimensionsMap: { Service: 'ingress' } };

export interface IngressProps {
  readonly cluster: ecs.Cluster;
  readonly image: ecs.ContainerImage;
  /** Environment of the container (resource names, host name...). */
  readonly environment: Record<string, string>;
  /** Secrets of the container, as environment variables. */
  readonly secrets: Record<string, ecs.Secret>;
  /** Where the NLB writes its access logs. */
  readonly accessLogs: s3.IBucket;
  /** EC2 capacity (default) or Fargate. */
  readonly capacity?: 'ec2' | 'fargate';
  /** Instance type of the EC2 capacity. Default: c7i.large. */
  readonly instanceType?: ec2.InstanceType;
  /** Default: 2. */
  readonly minTasks?: number;
  /** Default: 20. */
  readonly maxTasks?: number;
  /** Target of the CPU scaling policy, percent. Default: 60. */
  readonly targetCpuPercent?: number;
  /** Target of the sessions scaling policy: average open SMTP sessions per task. Default: 500. */
  readonly sessionsPerTask?: number;
  /**
   * How long a stopping task may drain. ECS sends SIGTERM, the ingress answers new commands with
   * 421 and lets sessions finish, then ECS kills it. Default: 120 seconds (ECS's maximum on EC2).
   */
  readonly stopTimeout?: Duration;
}

export class Ingress extends Construct {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly service: ecs.Ec2Service | ecs.FargateService;
  readonly targetGroups: elbv2.NetworkTargetGroup[] = [];
  readonly securityGroup: ec2.SecurityGroup;
  readonly taskRole: iam.IRole;
  /** The EC2 capacity (absent on Fargate). */
  readonly instances?: autoscaling.AutoScalingGroup;

  constructor(scope: Construct, id: string, props: IngressProps) {
    super(scope, id);
    const { cluster } = props;
    const vpc = cluster.vpc;
    const capacity = props.capacity ?? 'ec2';
    const stopTimeout = props.stopTimeout ?? Duration.seconds(120);

    const lbSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', { vpc, description: 'Outpost NLB: SMTP from anywhere', allowAllOutbound: false });
    for (const { port, name } of SMTP_PORTS) {
      lbSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(port), `SMTP ${name}`);
      lbSecurityGroup.addIngressRule(ec2.Peer.anyIpv6(), ec2.Port.tcp(port), `SMTP ${name}`);
    }
    this.securityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', { vpc, description: 'Outpost ingress tasks', allowAllOutbound: true });
    for (const { containerPort, name } of SMTP_PORTS) {
      // With client IP preservation the packets carry the client's address; a rule naming the
      // NLB's security group still admits them (and nothing that did not pass the NLB).
      this.securityGroup.addIngressRule(lbSecurityGroup, ec2.Port.tcp(containerPort), `SMTP ${name} from the NLB`);
      lbSecurityGroup.addEgressRule(this.securityGroup, ec2.Port.tcp(containerPort), `SMTP ${name} to the tasks`);
    }
    this.securityGroup.addIngressRule(lbSecurityGroup, ec2.Port.tcp(HEALTH_PORT), 'health checks from the NLB');
    lbSecurityGroup.addEgressRule(this.securityGroup, ec2.Port.tcp(HEALTH_PORT), 'health checks');

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: true,
      crossZoneEnabled: true,
      securityGroups: [lbSecurityGroup],
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
    });
    this.loadBalancer.logAccessLogs(props.accessLogs, 'nlb');

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS });
    const task =
      capacity === 'ec2'
        ? new ecs.Ec2TaskDefinition(this, 'Task', { networkMode: ecs.NetworkMode.AWS_VPC })
        : new ecs.FargateTaskDefinition(this, 'Task', { cpu: 1024, memoryLimitMiB: 2048 });
    this.taskRole = task.taskRole;
    const container = task.addContainer('smtp', {
      image: props.image,
      ...(capacity === 'ec2' ? { cpu: 1024, memoryReservationMiB: 1536 } : {}),
      environment: {
        ...props.environment,
        OUTPOST_LISTEN_ADDRESS: '0.0.0.0',
        OUTPOST_SMTP_PORT: String(SMTP_PORTS[0].containerPort),
        OUTPOST_SMTPS_PORT: String(SMTP_PORTS[1].containerPort),
        OUTPOST_BOUNCE_PORT: String(SMTP_PORTS[2].containerPort),
        OUTPOST_HTTP_PORT: String(HEALTH_PORT),
        // Sessions in flight get this long after SIGTERM, leaving ECS's stop timeout a margin.
        OUTPOST_CLOSE_TIMEOUT_SECONDS: String(Math.max(5, stopTimeout.toSeconds() - 15)),
      },
      secrets: props.secrets,
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'ingress', logGroup }),
      portMappings: [...SMTP_PORTS.map(({ containerPort }) => ({ containerPort })), { containerPort: HEALTH_PORT }],
      stopTimeout,
      readonlyRootFilesystem: true,
    });
    // The root filesystem is read-only; the TLS material from Secrets Manager is written here.
    task.addVolume({ name: 'tmp' });
    container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false });

    if (capacity === 'ec2') {
      const role = new iam.Role(this, 'InstanceRole', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
        managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
      });
      const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
        instanceType: props.instanceType ?? new ec2.InstanceType('c7i.large'),
        machineImage: ecs.EcsOptimizedImage.amazonLinux2023(),
        userData: ec2.UserData.forLinux(),
        role,
        requireImdsv2: true,
        detailedMonitoring: true,
        blockDevices: [{ deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(30, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }],
      });
      const group = new autoscaling.AutoScalingGroup(this, 'Instances', {
        vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        launchTemplate,
        minCapacity: 1,
        maxCapacity: props.maxTasks ?? 20,
      });
      this.instances = group;
      const provider = new ecs.AsgCapacityProvider(this, 'CapacityProvider', { autoScalingGroup: group, enableManagedTerminationProtection: false });
      cluster.addAsgCapacityProvider(provider);
      this.service = new ecs.Ec2Service(this, 'Service', {
        cluster,
        taskDefinition: task,
        desiredCount: props.minTasks ?? 2,
        securityGroups: [this.securityGroup],
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        capacityProviderStrategies: [{ capacityProvider: provider.capacityProviderName, weight: 1 }],
        circuitBreaker: { rollback: true },
        // Deployments start new tasks before stopping old ones: no drop in capacity.
        minHealthyPercent: 100,
        placementStrategies: [ecs.PlacementStrategy.spreadAcrossInstances()],
      });
    } else {
      this.service = new ecs.FargateService(this, 'Service', {
        cluster,
        taskDefinition: task,
        desiredCount: props.minTasks ?? 2,
        securityGroups: [this.securityGroup],
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        circuitBreaker: { rollback: true },
        // Deployments start new tasks before stopping old ones: no drop in capacity.
        minHealthyPercent: 100,
      });
    }

    for (const { name, port, containerPort } of SMTP_PORTS) {
      const listener = this.loadBalancer.addListener(`${name}-listener`, { port, protocol: elbv2.Protocol.TCP });
      const targetGroup = listener.addTargets(`${name}-targets`, {
        port: containerPort,
        protocol: elbv2.Protocol.TCP,
        targets: [this.service.loadBalancerTarget({ containerName: container.containerName, containerPort })],
        // Said explicitly: for IP targets the default is off, and admission needs the client's IP.
        preserveClientIp: true,
        // Set aside from ECS's stop timeout: the target leaves the NLB first, then drains.
        deregistrationDelay: Duration.seconds(30),
        healthCheck: { protocol: elbv2.Protocol.HTTP, port: String(HEALTH_PORT), path: '/healthz', interval: Duration.seconds(10), healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
      });
      this.targetGroups.push(targetGroup);
    }

    const scaling = this.service.autoScaleTaskCount({ minCapacity: props.minTasks ?? 2, maxCapacity: props.maxTasks ?? 20 });
    scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: props.targetCpuPercent ?? 60, scaleOutCooldown: Duration.seconds(60), scaleInCooldown: Duration.minutes(5) });
    scaling.scaleToTrackCustomMetric('Sessions', {
      metric: new cloudwatch.Metric({ ...ACTIVE_SESSIONS_METRIC, statistic: 'Average', period: Duration.minutes(1) }),
      targetValue: props.sessionsPerTask ?? 500,
      scaleOutCooldown: Duration.seconds(60),
      scaleInCooldown: Duration.minutes(5),
    });
  }
}
