// How mail leaves: in `ses` mode the SES configuration set whose events (bounces, complaints,
// deliveries, rejects, delays) come back through EventBridge into the `ses-events` queue, and SES
// identities for the operator's own domains (tenants' domains are registered at run time, when
// they are verified); `smarthost` mode needs none of SES; and, in `mx` mode, the deliver handler
// as an ECS worker, since Lambda cannot connect to port 25. The worker sends from the NAT
// gateways' Elastic IPs, whose reverse DNS must name the relay's host name.
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ses from 'aws-cdk-lib/aws-ses';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { DeliveryMode } from '../settings.js';

/** SES event types sent to EventBridge: what the bounce stage and the dashboards use. */
export const SES_EVENTS = [
  ses.EmailSendingEvent.BOUNCE,
  ses.EmailSendingEvent.COMPLAINT,
  ses.EmailSendingEvent.DELIVERY,
  ses.EmailSendingEvent.REJECT,
  ses.EmailSendingEvent.DELIVERY_DELAY,
  ses.EmailSendingEvent.RENDERING_FAILURE,
];

export interface DeliveryProps {
  readonly mode: DeliveryMode;
  /** The operator's own sending domains; in `ses` mode each becomes an SES email identity. Default: none. */
  readonly domains?: string[];
  /** Queue the SES events go to (consumed by the bounce stage). */
  readonly sesEvents: sqs.IQueue;
  /** `mx` mode: the cluster, image and environment of the deliver worker. */
  readonly worker?: {
    readonly cluster: ecs.ICluster;
    readonly image: ecs.ContainerImage;
    readonly environment: Record<string, string>;
    readonly secrets: Record<string, ecs.Secret>;
    /** Default: 2. */
    readonly desiredCount?: number;
  };
}

export class Delivery extends Construct {
  /** `ses` mode only. */
  readonly configurationSet?: ses.ConfigurationSet;
  readonly identities: ses.EmailIdentity[] = [];
  /** `mx` mode only. */
  readonly worker?: ecs.FargateService;

  constructor(scope: Construct, id: string, props: DeliveryProps) {
    super(scope, id);
    if (props.mode === 'ses') {
      const configurationSet = new ses.ConfigurationSet(this, 'ConfigurationSet', {
        reputationMetrics: true,
        sendingEnabled: true,
        tlsPolicy: ses.ConfigurationSetTlsPolicy.REQUIRE,
      });
      this.configurationSet = configurationSet;
      configurationSet.addEventDestination('ToEventBridge', {
        destination: ses.EventDestination.eventBus(events.EventBus.fromEventBusName(this, 'DefaultBus', 'default')),
        events: SES_EVENTS,
      });
      new events.Rule(this, 'SesEventsRule', {
        description: 'SES sending events of Outpost\'s configuration set to the bounce stage',
        eventPattern: { source: ['aws.ses'], detail: { mail: { tags: { 'ses:configuration-set': [configurationSet.configurationSetName] } } } },
        targets: [new targets.SqsQueue(props.sesEvents)],
      });
      for (const domain of props.domains ?? []) {
        // DKIM: Outpost signs with its own keys, so SES's Easy DKIM is not set up here.
        this.identities.push(
          new ses.EmailIdentity(this, `Identity-${domain}`, { identity: ses.Identity.domain(domain), configurationSet, mailFromBehaviorOnMxFailure: ses.MailFromBehaviorOnMxFailure.USE_DEFAULT_VALUE }),
        );
      }
    }

    if (props.mode === 'mx') {
      if (!props.worker) throw new Error('mx delivery needs the worker (cluster, image, environment)');
      const { worker } = props;
      const logGroup = new logs.LogGroup(this, 'WorkerLogs', { retention: logs.RetentionDays.THREE_MONTHS });
      const task = new ecs.FargateTaskDefinition(this, 'WorkerTask', { cpu: 1024, memoryLimitMiB: 2048 });
      task.addContainer('deliver', {
        image: worker.image,
        command: ['node', 'dist/deliver-worker.mjs'],
        environment: worker.environment,
        secrets: worker.secrets,
        logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'deliver-worker', logGroup }),
        readonlyRootFilesystem: true,
      });
      const securityGroup = new ec2.SecurityGroup(this, 'WorkerSecurityGroup', { vpc: worker.cluster.vpc, description: 'Outpost deliver worker: SMTP to MX hosts, HTTPS to AWS APIs', allowAllOutbound: false });
      securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(25), 'SMTP to recipients\' MX hosts');
      securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs over HTTPS (SQS, DynamoDB, S3, KMS) and the image registry');
      this.worker = new ecs.FargateService(this, 'Worker', {
        cluster: worker.cluster,
        taskDefinition: task,
        desiredCount: worker.desiredCount ?? 2,
        securityGroups: [securityGroup],
        // Private subnets: mail to port 25 leaves through the NAT gateways' Elastic IPs.
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        circuitBreaker: { rollback: true },
        // Deployments start new tasks before stopping old ones: no drop in capacity.
        minHealthyPercent: 100,
      });
    }
  }

  /** Lets `grantee` send raw mail through the configuration set (`ses` mode). */
  grantSend(grantee: iam.IGrantable): void {
    const stack = Stack.of(this);
    if (!this.configurationSet) throw new Error('SES sending is granted in ses delivery mode only');
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ses:SendEmail', 'ses:SendRawEmail'],
        resources: [
          stack.formatArn({ service: 'ses', resource: 'identity', resourceName: '*' }),
          stack.formatArn({ service: 'ses', resource: 'configuration-set', resourceName: this.configurationSet.configurationSetName }),
        ],
      }),
    );
  }

  /**
   * Lets `grantee` (the API) create, read, re-key and delete the SES identities of verified
   * tenant domains (core/sending-identities.ts), in the configuration set (`ses` mode).
   */
  grantManageIdentities(grantee: iam.IGrantable): void {
    const stack = Stack.of(this);
    if (!this.configurationSet) throw new Error('SES identities are managed in ses delivery mode only');
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ses:CreateEmailIdentity', 'ses:GetEmailIdentity', 'ses:DeleteEmailIdentity', 'ses:PutEmailIdentityDkimSigningAttributes'],
        resources: [
          stack.formatArn({ service: 'ses', resource: 'identity', resourceName: '*' }),
          // CreateEmailIdentity names the configuration set the identity uses by default.
          stack.formatArn({ service: 'ses', resource: 'configuration-set', resourceName: this.configurationSet.configurationSetName }),
        ],
      }),
    );
  }
}
