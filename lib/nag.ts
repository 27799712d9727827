// cdk-nag AwsSolutions findings accepted on purpose, each on the construct it concerns and with
// its reason. Anything not acknowledged here fails `cdk synth` and the synth test.
import { CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { OutpostStack } from './outpost-stack.js';

function acknowledge(scope: IConstruct, findings: Array<[id: string, reason: string]>): void {
  for (const [id, reason] of findings) Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });
}

function logicalId(construct: IConstruct): string {
  const resource = construct.node.defaultChild;
  if (!resource || !CfnElement.isCfnElement(resource)) throw new Error(`${construct.node.path} has no CloudFormation resource`);
  return Stack.of(construct).getLogicalId(resource);
}

/** The account and region as cdk-nag writes them in a finding: literal, or the pseudo parameter. */
function whereIn(stack: Stack): { region: string; account: string } {
  return {
    region: Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region,
    account: Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account,
  };
}

/** The wildcards that CDK's own grant methods write for the message bucket, the tables and the key. */
function grantWildcards(stack: OutpostStack): Array<[string, string]> {
  const { storage } = stack;
  const why = 'written by CDK grant methods (grantReadWrite, grantReadWriteData, grantEncryptDecrypt) and scoped to Outpost\'s own bucket, tables and key';
  return [
    ...['s3:Abort*', 's3:DeleteObject*', 's3:GetBucket*', 's3:GetObject*', 's3:List*', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'].map((action): [string, string] => [`AwsSolutions-IAM5[Action::${action}]`, `Action wildcard ${why}.`]),
    [`AwsSolutions-IAM5[Resource::<${logicalId(storage.bucket)}.Arn>/*]`, 'Every message blob lives under its own key in the message bucket; the entries read and write any of them.'],
    ...Object.values(storage.tables).map((table): [string, string] => [`AwsSolutions-IAM5[Resource::<${logicalId(table)}.Arn>/index/*]`, 'Queries through the table\'s own secondary indexes (listed in lib/tables.ts).']),
  ];
}

const MANAGED_LAMBDA_POLICIES: Array<[string, string]> = [
  ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'The AWS managed policy for writing the function\'s logs; it grants nothing else.'],
  ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]', 'The AWS managed policy that lets a function in a VPC manage its network interfaces; needed to reach clamd and rspamd.'],
  ['AwsSolutions-L1', 'Node.js 22 on purpose: Outpost is built and tested on Node 20/22 and its pinned dependencies (middy 6, Powertools 2.35) are not released for newer runtimes here; cdk-nag flags anything older than the newest runtime aws-cdk-lib knows.'],
  ['AwsSolutions-IAM5[Resource::*]', 'X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) has no resource-level permissions.'],
];

export function acknowledgeFindings(stack: OutpostStack): void {
  const { region, account } = whereIn(stack);
  const wildcards = grantWildcards(stack);
  const functions = [...stack.pipeline.functions, stack.api.handler];
  for (const { function: fn } of functions) {
    acknowledge(fn, [...MANAGED_LAMBDA_POLICIES, ...wildcards]);
  }
  acknowledge(stack.ingress.taskRole, wildcards);
  if (stack.delivery.worker) {
    acknowledge(stack.delivery.worker.taskDefinition.taskRole, wildcards);
    acknowledge(stack.delivery.worker.taskDefinition, [['AwsSolutions-ECS2', 'The environment holds only resource names and the delivery mode; secrets come from Secrets Manager.']]);
  }
  const sesIdentities = `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ses:${region}:${account}:identity/*]`;
  const identitiesReason = 'Tenants\' sending domains become SES identities at run time (when a domain is verified); their names are not known at deploy time.';
  if (stack.pipeline.deliver) acknowledge(stack.pipeline.deliver.function, [[sesIdentities, identitiesReason]]);
  acknowledge(stack.api.handler.function, [[sesIdentities, identitiesReason]]);

  acknowledge(stack.api.httpApi, [['AwsSolutions-APIG4', 'The API authenticates every request itself (operator token or tenant API key, checked in lambdas/api/auth.ts with per-IP failure limits); an API Gateway authorizer would duplicate it.']]);
  acknowledge(stack.ingress, [
    ['AwsSolutions-EC23', 'The SMTP listeners (587, 465, 25) are public by nature: mail clients and bounce senders connect from anywhere. Admission (TLS, AUTH, reputation, limits) runs in the ingress.'],
    ['AwsSolutions-ECS2', 'The environment holds only resource names and ports; the operator token and TLS key come from Secrets Manager.'],
    ['AwsSolutions-AS3', 'Scaling events of the ingress capacity are visible in ECS and CloudWatch; the alarms watch the service (unhealthy hosts), not single instances.'],
    ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]', 'Session Manager access to the ingress instances instead of SSH keys.'],
    ['AwsSolutions-IAM5[Action::ecs:Submit*]', 'Written by ECS for its container agent (the instance role of an ECS capacity provider).'],
    ['AwsSolutions-IAM5[Resource::*]', 'The ECS agent\'s and the drain hook\'s calls (ecs:DiscoverPollEndpoint, ecs:ListContainerInstances...) have no resource-level permissions; written by CDK.'],
    ...(stack.ingress.instances
      ? [[`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:${region}:${account}:autoScalingGroup:*:autoScalingGroupName/<${logicalId(stack.ingress.instances)}>]`, 'Written by CDK for the instance-draining lifecycle hook; scoped to the ingress\'s own group by name.'] satisfies [string, string]]
      : []),
    ['AwsSolutions-L1', 'The instance-draining hook function is CDK\'s own (ECS capacity provider); its runtime is chosen by aws-cdk-lib.'],
    ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'CDK\'s instance-draining hook function writes its logs with the AWS managed logging policy.'],
    ['AwsSolutions-SNS3', 'The topic of CDK\'s instance-draining lifecycle hook; only Auto Scaling publishes to it.'],
  ]);
  acknowledge(stack.scanning, [['AwsSolutions-ECS2', 'The only environment variable switches off clamav-milter in the ClamAV image; no secrets.']]);
  acknowledge(stack.storage.operatorToken, [['AwsSolutions-SMG4', 'The operator token is rotated by the operator (a new token invalidates every script that holds the old one), not on a schedule.']]);
  acknowledge(stack.storage.tlsCertificate, [['AwsSolutions-SMG4', 'Holds the TLS certificate and key that the operator renews with the certificate authority; there is nothing to generate.']]);
  acknowledge(stack.storage.relayCredentials, [['AwsSolutions-SMG4', 'Credentials issued by the smarthost\'s provider; they are rotated there, then stored here.']]);
}

