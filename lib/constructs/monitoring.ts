// What operators watch: alarms to one SNS topic, and a dashboard. Alarms cover the ways mail gets
// stuck or the sending reputation suffers: dead letters, queues that stop draining, Lambda
// errors and throttles, unhealthy ingress targets, SES bounce and complaint rates, a spike of
// automatic locks (an attack or a broken tenant) and failing scans (engines down: nothing is
// delivered unscanned, so mail waits).
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE } from '../../lambdas/metric-names.js';
import { ACTIVE_SESSIONS_METRIC } from './ingress.js';
import type { OutpostFunction } from './outpost-function.js';
import type { PipelineQueue, PipelineQueueName } from './storage.js';

export interface MonitoringProps {
  readonly key: kms.IKey;
  readonly queues: Record<PipelineQueueName, PipelineQueue>;
  readonly functions: OutpostFunction[];
  readonly targetGroups: elbv2.NetworkTargetGroup[];
  /** Address subscribed to the alarm topic. Default: none (subscribe later). */
  readonly alarmEmail?: string;
  /** Age of the oldest message per queue before alarming. Default: 15 minutes (deliver: 1 hour, retries wait there). */
  readonly maxQueueAge?: Partial<Record<PipelineQueueName, Duration>>;
  /** SES bounce rate that alarms (SES reviews accounts at 5 %, pauses at 10 %). Default: 0.05. */
  readonly maxBounceRate?: number;
  /** SES complaint rate that alarms (SES reviews at 0.1 %, pauses at 0.5 %). Default: 0.001. */
  readonly maxComplaintRate?: number;
  /** Automatic locks within 15 minutes that count as a spike. Default: 20. */
  readonly lockSpike?: number;
  /** Failed scans within 5 minutes that alarm. Default: 10. */
  readonly scanFailures?: number;
}

export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Alarms', { displayName: 'Outpost alarms', masterKey: props.key, enforceSSL: true });
    // CloudWatch publishes to the encrypted topic only if the key lets it.
    props.key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));

    const fiveMinutes = Duration.minutes(5);
    for (const [name, { queue, deadLetters }] of Object.entries(props.queues)) {
      this.alarm(`${name}-dead-letters`, {
        metric: deadLetters.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum' }),
        threshold: 1,
        description: `Messages in the ${name} dead-letter queue: they failed every retry and wait for an operator (redrive after fixing the cause).`,
      });
      const maxAge = props.maxQueueAge?.[name as PipelineQueueName] ?? (name === 'deliver' ? Duration.hours(1) : Duration.minutes(15));
      this.alarm(`${name}-oldest-message`, {
        metric: queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: 'Maximum' }),
        threshold: maxAge.toSeconds(),
        evaluationPeriods: 2,
        description: `The ${name} queue is not draining: its oldest message is older than ${maxAge.toHumanString()}.`,
      });
    }
    for (const { function: fn, node } of props.functions) {
      this.alarm(`${node.id}-errors`, { metric: fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }), threshold: 5, description: `${node.id} Lambda: invocations failed (not single records, whole invocations).` });
      this.alarm(`${node.id}-throttles`, { metric: fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }), threshold: 1, description: `${node.id} Lambda: invocations throttled (concurrency limit reached).` });
    }
    props.targetGroups.forEach((group, index) => {
      this.alarm(`ingress-unhealthy-hosts-${index}`, {
        metric: group.metrics.unHealthyHostCount({ period: Duration.minutes(1), statistic: 'Maximum' }),
        threshold: 1,
        evaluationPeriods: 3,
        description: 'Ingress tasks fail the NLB health check.',
      });
    });
    const bounceRate = new cloudwatch.Metric({ namespace: 'AWS/SES', metricName: 'Reputation.BounceRate', period: Duration.hours(1), statistic: 'Maximum' });
    const complaintRate = new cloudwatch.Metric({ namespace: 'AWS/SES', metricName: 'Reputation.ComplaintRate', period: Duration.hours(1), statistic: 'Maximum' });
    this.alarm('ses-bounce-rate', { metric: bounceRate, threshold: props.maxBounceRate ?? 0.05, description: 'SES bounce rate: SES reviews the account at 5 % and may pause sending at 10 %.' });
    this.alarm('ses-complaint-rate', { metric: complaintRate, threshold: props.maxComplaintRate ?? 0.001, description: 'SES complaint rate: SES reviews the account at 0.1 % and may pause sending at 0.5 %.' });

    const outpostMetric = (metricName: string, service: string, period: Duration): cloudwatch.Metric =>
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { service }, period, statistic: 'Sum' });
    // Every entry that locks users counts its own locks (lambdas/lock-metrics.ts): the ingress
    // (limits, invalid recipients, AUTH), scan (verdicts), deliver and bounce (hard bounces).
    const lockingEntries = ['ingress', 'scan', 'deliver', 'bounce'];
    const locks = new cloudwatch.MathExpression({
      expression: lockingEntries.map((service) => `FILL(${service}, 0)`).join(' + '),
      usingMetrics: Object.fromEntries(lockingEntries.map((service) => [service, outpostMetric(METRIC.locksApplied, service, Duration.minutes(15))])),
      period: Duration.minutes(15),
      label: 'Automatic locks',
    });
    this.alarm('lock-spike', { metric: locks, threshold: props.lockSpike ?? 20, description: 'Many outgoing users were locked automatically within 15 minutes: an attack, a compromised tenant, or a limit set too low.' });
    const scanFailures = outpostMetric(METRIC.scanFailures, 'scan', fiveMinutes);
    this.alarm('scan-failures', { metric: scanFailures, threshold: props.scanFailures ?? 10, description: 'Scans fail (clamd or rspamd down or slow): messages wait undelivered until scanning works.' });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(6) });
    const queueEntries = Object.entries(props.queues);
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Queue depth', left: queueEntries.map(([name, { queue }]) => queue.metricApproximateNumberOfMessagesVisible({ label: name })) }),
      new cloudwatch.GraphWidget({ title: 'Oldest message (s)', left: queueEntries.map(([name, { queue }]) => queue.metricApproximateAgeOfOldestMessage({ label: name })) }),
      new cloudwatch.GraphWidget({ title: 'Dead letters', left: queueEntries.map(([name, { deadLetters }]) => deadLetters.metricApproximateNumberOfMessagesVisible({ label: name })) }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'SMTP sessions per task', left: [new cloudwatch.Metric({ ...ACTIVE_SESSIONS_METRIC, statistic: 'Average', label: 'average' }), new cloudwatch.Metric({ ...ACTIVE_SESSIONS_METRIC, statistic: 'Maximum', label: 'maximum' })] }),
      new cloudwatch.GraphWidget({ title: 'Pipeline', left: [outpostMetric(METRIC.messagesScanned, 'scan', fiveMinutes), outpostMetric(METRIC.messagesDelivered, 'deliver', fiveMinutes), outpostMetric(METRIC.bouncesHandled, 'bounce', fiveMinutes)], right: [scanFailures, locks] }),
      new cloudwatch.GraphWidget({ title: 'SES reputation', left: [bounceRate, complaintRate] }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Lambda errors', left: props.functions.map(({ function: fn, node }) => fn.metricErrors({ label: node.id })) }),
      new cloudwatch.GraphWidget({ title: 'Lambda duration p99', left: props.functions.map(({ function: fn, node }) => fn.metricDuration({ label: node.id, statistic: 'p99' })) }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms }),
    );
  }

  private alarm(id: string, options: { metric: cloudwatch.IMetric; threshold: number; description: string; evaluationPeriods?: number }): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      metric: options.metric,
      threshold: options.threshold,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}
