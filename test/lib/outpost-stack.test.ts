// The CDK app, synthesized once with the default context (ses delivery, EC2 ingress capacity):
// each concern's resources carry the properties the deployment depends on, and cdk-nag's
// AwsSolutions checks pass with only the acknowledged findings.
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { TABLES } from '../../lib/tables.js';
import { synthOutpost, type Synthesized } from './synth.js';

let synthesized: Synthesized;
let template: Template;

beforeAll(() => {
  synthesized = synthOutpost({ domains: 'example.org', alarmEmail: 'ops@example.org' });
  template = synthesized.template;
}, 120_000);

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;
const resources = (type: string): Resources => template.findResources(type) as Resources;
const firstOf = (type: string, props: Record<string, unknown> = {}) => {
  const found = Object.values(template.findResources(type, { Properties: props }) as Resources);
  expect(found.length, `a ${type} matching ${JSON.stringify(props)}`).toBeGreaterThan(0);
  return found[0]!;
};

describe('cdk-nag', () => {
  it('passes the AwsSolutions checks: the synth above throws on any finding not acknowledged with a reason', () => {
    // synthOutpost ran app.synth() with AwsSolutionsChecks; reaching here means no finding was left.
    expect(synthesized.stack.templateFile).toBe('Outpost.template.json');
  });
});

describe('network', () => {
  it('has public and private subnets in two zones, NAT gateways and flow logs', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 2);
    template.hasResourceProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true });
    template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL' });
    template.hasResourceProperties('AWS::ServiceDiscovery::PrivateDnsNamespace', { Name: 'outpost.internal' });
  });
});

describe('ingress', () => {
  it('listens on 587, 465 and 25 with TCP listeners of an internet-facing NLB', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Type: 'network', Scheme: 'internet-facing' });
    for (const port of [587, 465, 25]) template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: port, Protocol: 'TCP' });
  });

  it('forwards to the container high ports with the client IP preserved and without PROXY protocol', () => {
    for (const port of [2587, 2465, 2525]) {
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
        Port: port,
        Protocol: 'TCP',
        TargetType: 'ip',
        HealthCheckProtocol: 'HTTP',
        HealthCheckPath: '/healthz',
        HealthCheckPort: '8080',
        TargetGroupAttributes: Match.arrayWith([{ Key: 'preserve_client_ip.enabled', Value: 'true' }]),
      });
    }
    for (const group of Object.values(resources('AWS::ElasticLoadBalancingV2::TargetGroup'))) {
      expect(JSON.stringify(group.Properties?.['TargetGroupAttributes'])).not.toContain('proxy_protocol_v2.enabled","Value":"true');
    }
  });

  it('writes NLB access logs', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'access_logs.s3.enabled', Value: 'true' }]),
    });
  });

  it('runs the service on an EC2 capacity provider, non-root friendly high ports, draining within the stop timeout', () => {
    template.hasResourceProperties('AWS::ECS::CapacityProvider', { AutoScalingGroupProvider: Match.objectLike({ ManagedScaling: Match.objectLike({ Status: 'ENABLED' }) }) });
    template.hasResourceProperties('AWS::ECS::Service', { CapacityProviderStrategy: Match.arrayWith([Match.objectLike({ Weight: 1 })]), NetworkConfiguration: Match.anyValue() });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      NetworkMode: 'awsvpc',
      ContainerDefinitions: Match.arrayWith([
        Match.objectLike({
          Name: 'smtp',
          StopTimeout: 120,
          ReadonlyRootFilesystem: true,
          PortMappings: Match.arrayWith([Match.objectLike({ ContainerPort: 2587 }), Match.objectLike({ ContainerPort: 8080 })]),
          Environment: Match.arrayWith([{ Name: 'OUTPOST_SMTP_PORT', Value: '2587' }, { Name: 'OUTPOST_BOUNCE_PORT', Value: '2525' }]),
          Secrets: Match.arrayWith([Match.objectLike({ Name: 'OUTPOST_OPERATOR_TOKEN' }), Match.objectLike({ Name: 'OUTPOST_TLS_KEY_PEM' })]),
        }),
      ]),
    });
  });

  it('scales on CPU and on open SMTP sessions per task', () => {
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({ PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' }, TargetValue: 60 }),
    });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        CustomizedMetricSpecification: Match.objectLike({ Namespace: 'Outpost', MetricName: 'ActiveSessions', Statistic: 'Average' }),
        TargetValue: 500,
      }),
    });
  });
});

describe('storage', () => {
  it('keeps messages in a KMS-encrypted bucket that refuses plain HTTP and public access, with lifecycle rules', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }), BucketKeyEnabled: true })] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Id: 'processed-and-quarantined-messages', Prefix: 'messages/', ExpirationInDays: 30, Status: 'Enabled' }),
          Match.objectLike({ Id: 'bounces', Prefix: 'bounces/', ExpirationInDays: 14 }),
          Match.objectLike({ Id: 'held-message-reports', Prefix: 'reports/', ExpirationInDays: 14 }),
        ]),
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'messages-bucket/' }),
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('gives every queue a dead-letter queue and a visibility timeout of at least six times its consumer\'s timeout', () => {
    const functions = resources('AWS::Lambda::Function');
    const queues = resources('AWS::SQS::Queue');
    const mappings = Object.values(resources('AWS::Lambda::EventSourceMapping'));
    expect(mappings.length).toBeGreaterThanOrEqual(4);
    for (const mapping of mappings) {
      const props = mapping.Properties ?? {};
      expect(props['FunctionResponseTypes']).toEqual(['ReportBatchItemFailures']);
      const functionId = (props['FunctionName'] as { Ref: string }).Ref;
      const queueId = (props['EventSourceArn'] as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const timeout = Number(functions[functionId]?.Properties?.['Timeout']);
      const queue = queues[queueId]?.Properties ?? {};
      expect(Number(queue['VisibilityTimeout'])).toBeGreaterThanOrEqual(6 * timeout);
      expect(queue['RedrivePolicy']).toMatchObject({ maxReceiveCount: 5 });
    }
    const withDlq = Object.values(queues).filter((queue) => queue.Properties?.['RedrivePolicy']);
    expect(withDlq).toHaveLength(4);
    for (const queue of Object.values(queues)) expect(queue.Properties?.['KmsMasterKeyId']).toBeDefined();
  });

  it('creates plain on-demand DynamoDB tables (not global tables) with point-in-time recovery, TTL and KMS', () => {
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 0);
    for (const [name, definition] of Object.entries(TABLES)) {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        TableName: `Outpost-${name}`,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: 'KMS' }),
        ...('ttlAttribute' in definition ? { TimeToLiveSpecification: { AttributeName: definition.ttlAttribute, Enabled: true } } : {}),
        ...(definition.indexes.length > 0 ? { GlobalSecondaryIndexes: definition.indexes.map((index) => Match.objectLike({ IndexName: index.name })) } : {}),
      });
    }
    template.hasResourceProperties('AWS::DynamoDB::Table', { KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true } });
  });

  it('rotates the KMS key and keeps the secrets under it', () => {
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    template.resourceCountIs('AWS::SecretsManager::Secret', 3);
    template.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: Match.objectLike({ PasswordLength: 48 }), KmsKeyId: Match.anyValue() });
  });
});

describe('scanning', () => {
  it('runs clamd (with freshclam) and rspamd as an internal service found through Cloud Map', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      ContainerDefinitions: Match.arrayWith([
        Match.objectLike({ Name: 'clamav', Image: Match.stringLikeRegexp('^clamav/clamav'), PortMappings: [Match.objectLike({ ContainerPort: 3310 })] }),
        Match.objectLike({ Name: 'rspamd', PortMappings: [Match.objectLike({ ContainerPort: 11333 })] }),
      ]),
    });
    template.hasResourceProperties('AWS::ServiceDiscovery::Service', { Name: 'scanning' });
  });

  it('is reachable on 3310 and 11333 from the scan Lambda only, which is told where', () => {
    for (const port of [3310, 11333]) {
      template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: port, ToPort: port, IpProtocol: 'tcp', SourceSecurityGroupId: Match.anyValue() });
    }
    const scan = firstOf('AWS::Lambda::Function', { Handler: 'index.handler', Description: Match.stringLikeRegexp('scans accepted messages') });
    expect(JSON.stringify(scan.Properties?.['Environment'])).toContain('scanning.outpost.internal:3310');
    expect(scan.Properties?.['VpcConfig']).toBeDefined();
  });
});

describe('pipeline and delivery', () => {
  it('runs every Outpost function on nodejs22.x, ARM, in the VPC, with JSON logs', () => {
    const outpost = Object.values(resources('AWS::Lambda::Function')).filter((fn) => String(fn.Properties?.['Description'] ?? '').startsWith('Outpost:'));
    expect(outpost.map((fn) => fn.Properties?.['Description'])).toHaveLength(5);
    for (const fn of outpost) {
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], LoggingConfig: { LogFormat: 'JSON' } });
      expect(fn.Properties?.['VpcConfig']).toBeDefined();
      expect(JSON.stringify(fn.Properties?.['Environment'])).toContain('OUTPOST_IDEMPOTENCY_TABLE');
    }
  });

  it('sends SES events of its configuration set through EventBridge to the ses-events queue', () => {
    template.hasResourceProperties('AWS::SES::ConfigurationSet', { ReputationOptions: { ReputationMetricsEnabled: true }, DeliveryOptions: { TlsPolicy: 'REQUIRE' } });
    template.hasResourceProperties('AWS::SES::ConfigurationSetEventDestination', {
      EventDestination: Match.objectLike({ Enabled: true, MatchingEventTypes: Match.arrayWith(['bounce', 'complaint', 'delivery']), EventBridgeDestination: Match.anyValue() }),
    });
    template.hasResourceProperties('AWS::Events::Rule', { EventPattern: Match.objectLike({ source: ['aws.ses'] }), Targets: [Match.objectLike({ Arn: Match.anyValue() })] });
    template.hasResourceProperties('AWS::SES::EmailIdentity', { EmailIdentity: 'example.org' });
  });

  it('lets the deliver Lambda send raw mail through SES (ses mode) and runs housekeeping on a schedule', () => {
    // The deliver role's grants outgrow one inline policy (every table), so CDK moves the rest
    // into an overflow managed policy: the SES grant may be in either.
    const sesGrant = { PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['ses:SendEmail', 'ses:SendRawEmail'] })]) } };
    const grants = [...Object.keys(template.findResources('AWS::IAM::Policy', { Properties: sesGrant })), ...Object.keys(template.findResources('AWS::IAM::ManagedPolicy', { Properties: sesGrant }))];
    expect(grants.filter((id) => id.startsWith('PipelineDeliverFunction'))).not.toEqual([]);
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
    expect(synthesized.stack.pipeline.deliver).toBeDefined();
  });
});

describe('api', () => {
  it('puts an HTTP API with throttling and access logs in front of the API Lambda', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', { IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 }),
      AccessLogSettings: Match.objectLike({ Format: Match.stringLikeRegexp('sourceIp') }),
    });
  });
});

describe('monitoring', () => {
  const alarmOn = (props: Record<string, unknown>) => template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: [Match.anyValue()], ...props });

  it('alarms on dead letters and on queues that stop draining', () => {
    const deadLetterAlarms = Object.values(resources('AWS::CloudWatch::Alarm')).filter((alarm) => alarm.Properties?.['MetricName'] === 'ApproximateNumberOfMessagesVisible');
    expect(deadLetterAlarms).toHaveLength(4);
    for (const alarm of deadLetterAlarms) expect(alarm.Properties).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    alarmOn({ MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 900 });
    alarmOn({ MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 3600 });
  });

  it('alarms on Lambda errors and throttles, unhealthy ingress targets, SES reputation, lock spikes and scan failures', () => {
    alarmOn({ Namespace: 'AWS/Lambda', MetricName: 'Errors' });
    alarmOn({ Namespace: 'AWS/Lambda', MetricName: 'Throttles', Threshold: 1 });
    alarmOn({ Namespace: 'AWS/NetworkELB', MetricName: 'UnHealthyHostCount' });
    alarmOn({ Namespace: 'AWS/SES', MetricName: 'Reputation.BounceRate', Threshold: 0.05 });
    alarmOn({ Namespace: 'AWS/SES', MetricName: 'Reputation.ComplaintRate', Threshold: 0.001 });
    alarmOn({ Namespace: 'Outpost', MetricName: 'ScanFailures', Dimensions: [{ Name: 'service', Value: 'scan' }] });
    alarmOn({ Threshold: 20, Metrics: Match.arrayWith([Match.objectLike({ Expression: 'FILL(ingress, 0) + FILL(scan, 0) + FILL(deliver, 0) + FILL(bounce, 0)' })]) });
    for (const service of ['ingress', 'scan', 'deliver', 'bounce']) {
      alarmOn({ Metrics: Match.arrayWith([Match.objectLike({ Id: service, MetricStat: Match.objectLike({ Metric: { Namespace: 'Outpost', MetricName: 'LocksApplied', Dimensions: [{ Name: 'service', Value: service }] } }) })]) });
    }
  });

  it('sends alarms to an encrypted SNS topic with the operator subscribed, and has a dashboard', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue(), DisplayName: 'Outpost alarms' });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.org' });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    for (const alarm of synthesized.stack.monitoring.alarms) expect(alarm.alarmArn).toBeDefined();
  });
});
