// The message pipeline after acceptance: Lambdas fed by the queues (scan → deliver, bounce and
// SES events), each reporting partial batch failures so one bad message does not retry its
// batch, and the scheduled housekeeping. In `mx` mode the deliver queue is consumed by the ECS
// worker (see Delivery) instead of a Lambda.
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { FUNCTION_ACCESS, type FunctionName } from '../access.js';
import type { DeliveryMode } from '../settings.js';
import { OutpostFunction } from './outpost-function.js';
import type { Delivery } from './delivery.js';
import type { Scanning } from './scanning.js';
import type { PipelineQueueName, Storage } from './storage.js';

/** Timeout of each queue's consumer; the queue's visibility timeout is six times this. */
export const CONSUMER_TIMEOUTS: Record<PipelineQueueName, Duration> = {
  scan: Duration.seconds(60),
  // A slow MX may take minutes per recipient; SES and a smarthost answer in seconds.
  deliver: Duration.seconds(120),
  bounce: Duration.seconds(60),
  'ses-events': Duration.seconds(60),
};

export interface PipelineProps {
  readonly vpc: ec2.IVpc;
  readonly storage: Storage;
  readonly scanning: Scanning;
  readonly delivery: Delivery;
  readonly mode: DeliveryMode;
  /** Environment every function gets (resource names, host name...). */
  readonly environment: Record<string, string>;
  /** `smarthost` mode: the smarthost's port, the only SMTP port the deliver Lambda may connect to. */
  readonly relayPort?: number;
  /** Concurrent deliveries at most (protects the smarthost and SES's sending rate). Default: 50. */
  readonly maxDeliverConcurrency?: number;
  /** How often housekeeping runs. Default: every hour. */
  readonly housekeepingSchedule?: events.Schedule;
}

export class Pipeline extends Construct {
  readonly scan: OutpostFunction;
  /** Absent in `mx` mode (the ECS worker delivers). */
  readonly deliver?: OutpostFunction;
  readonly bounce: OutpostFunction;
  readonly housekeeping: OutpostFunction;
  readonly functions: OutpostFunction[] = [];
  private readonly storage: Storage;

  constructor(scope: Construct, id: string, props: PipelineProps) {
    super(scope, id);
    const { storage, vpc } = props;
    this.storage = storage;
    const queues = storage.queues;

    const scanSecurityGroup = new ec2.SecurityGroup(this, 'ScanSecurityGroup', { vpc, description: 'Outpost scan and bounce Lambdas', allowAllOutbound: true });
    props.scanning.allowFrom(scanSecurityGroup, 'scan and bounce Lambdas');
    const scanningEnvironment = { OUTPOST_CLAMD: props.scanning.clamdAddress, OUTPOST_RSPAMD_URL: props.scanning.rspamdUrl };

    this.scan = this.addFunction('Scan', 'scan', {
      entry: 'lambdas/scan/index.ts',
      description: 'Outpost: scans accepted messages (clamd, rspamd, fingerprints) and queues them for delivery or quarantines them',
      vpc,
      securityGroup: scanSecurityGroup,
      timeout: CONSUMER_TIMEOUTS.scan,
      environment: { ...props.environment, ...scanningEnvironment, POWERTOOLS_SERVICE_NAME: 'scan' },
    });
    this.consume(this.scan, 'scan', {});

    if (props.mode !== 'mx') {
      // Out through the NAT gateways to the AWS APIs (SES, SQS, KMS, Secrets Manager) on 443 and,
      // in smarthost mode, to the smarthost's submission port: no other connection leaves.
      const deliverSecurityGroup = new ec2.SecurityGroup(this, 'DeliverSecurityGroup', { vpc, description: `Outpost deliver Lambda (${props.mode}): HTTPS to AWS APIs, SMTP to the smarthost only`, allowAllOutbound: false });
      deliverSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs over HTTPS');
      if (props.mode === 'smarthost') {
        if (!props.relayPort) throw new Error('smarthost delivery needs the relay port');
        deliverSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(props.relayPort), 'the smarthost (SMTP submission)');
      }
      this.deliver = this.addFunction('Deliver', 'deliver', {
        entry: 'lambdas/deliver/index.ts',
        description: `Outpost: signs and delivers messages (${props.mode})`,
        vpc,
        securityGroup: deliverSecurityGroup,
        timeout: CONSUMER_TIMEOUTS.deliver,
        environment: { ...props.environment, POWERTOOLS_SERVICE_NAME: 'deliver' },
      });
      this.consume(this.deliver, 'deliver', { maxConcurrency: props.maxDeliverConcurrency ?? 50 });
      // Each mode gets its own way out only: SES sending, or the smarthost's credentials.
      if (props.mode === 'ses') props.delivery.grantSend(this.deliver.function);
      if (props.mode === 'smarthost') storage.relayCredentials.grantRead(this.deliver.function);
    }

    this.bounce = this.addFunction('Bounce', 'bounce', {
      entry: 'lambdas/bounce/index.ts',
      description: 'Outpost: handles bounces from the bounce listener and SES bounce and complaint events',
      vpc,
      securityGroup: scanSecurityGroup,
      timeout: CONSUMER_TIMEOUTS.bounce,
      environment: { ...props.environment, ...scanningEnvironment, POWERTOOLS_SERVICE_NAME: 'bounce' },
    });
    this.consume(this.bounce, 'bounce', {});
    this.consume(this.bounce, 'ses-events', {});

    this.housekeeping = this.addFunction('Housekeeping', 'housekeeping', {
      entry: 'lambdas/housekeeping/index.ts',
      description: 'Outpost: expires locks, purges old message records, orphan bounces and quarantine',
      vpc,
      timeout: Duration.minutes(5),
      environment: { ...props.environment, POWERTOOLS_SERVICE_NAME: 'housekeeping' },
    });
    new events.Rule(this, 'HousekeepingSchedule', {
      description: 'Runs Outpost housekeeping',
      schedule: props.housekeepingSchedule ?? events.Schedule.rate(Duration.hours(1)),
      targets: [new targets.LambdaFunction(this.housekeeping.function, { retryAttempts: 2 })],
    });
  }

  private addFunction(id: string, name: FunctionName, props: ConstructorParameters<typeof OutpostFunction>[2]): OutpostFunction {
    const created = new OutpostFunction(this, id, props);
    this.storage.grant(created.function, FUNCTION_ACCESS[name]);
    this.functions.push(created);
    return created;
  }

  private consume(consumer: OutpostFunction, queue: PipelineQueueName, options: { maxConcurrency?: number }): void {
    consumer.function.addEventSource(
      new SqsEventSource(this.storage.queues[queue].queue, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(1),
        reportBatchItemFailures: true,
        ...(options.maxConcurrency ? { maxConcurrency: options.maxConcurrency } : {}),
      }),
    );
  }
}
