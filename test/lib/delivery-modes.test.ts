// Context parameters change the deployment: `mx` delivery runs the deliver handler as an ECS
// worker (Lambda cannot send on port 25) instead of a Lambda, the ingress can run on Fargate,
// and parameters that do not fit are refused at synth time. One synth for mx + Fargate
// (smarthost mode: smarthost-mode.test.ts).
import { App } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_ACCESS } from '../../lib/access.js';
import { deploymentFromContext, relayPort } from '../../lib/settings.js';
import { actionsOf, logicalIdOf, mentions, roleStatements, synthOutpost, type Synthesized } from './synth.js';

let synthesized: Synthesized;
let template: Template;

beforeAll(() => {
  synthesized = synthOutpost({ deliveryMode: 'mx', ingressCapacity: 'fargate', natEipAllocationIds: 'eipalloc-0a1,eipalloc-0b2', ingressMaxTasks: '8' });
  template = synthesized.template;
}, 120_000);

describe('mx delivery on a Fargate ingress', () => {
  it('has no deliver Lambda; a worker service runs the deliver entry of the same image', () => {
    expect(synthesized.stack.pipeline.deliver).toBeUndefined();
    const descriptions = Object.values(template.findResources('AWS::Lambda::Function')).map((fn) => String((fn as { Properties?: { Description?: string } }).Properties?.Description ?? ''));
    expect(descriptions.some((text) => text.includes('signs and delivers'))).toBe(false);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Name: 'deliver', Command: ['node', 'dist/deliver-worker.mjs'], ReadonlyRootFilesystem: true })],
    });
    expect(synthesized.stack.delivery.worker).toBeDefined();
  });

  it('sends from the NAT gateways\' given Elastic IPs (reverse DNS is set on those)', () => {
    template.hasResourceProperties('AWS::EC2::NatGateway', { AllocationId: 'eipalloc-0a1' });
    template.hasResourceProperties('AWS::EC2::NatGateway', { AllocationId: 'eipalloc-0b2' });
    template.resourceCountIs('AWS::EC2::EIP', 0);
  });

  it('runs the worker in private subnets whose only ways out are SMTP to MX hosts (25) and HTTPS', () => {
    const worker = synthesized.stack.delivery.worker;
    if (!worker) throw new Error('mx mode has a worker');
    const service = template.findResources('AWS::ECS::Service')[logicalIdOf(synthesized.stack, worker)] as { Properties: { NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp?: string; SecurityGroups: unknown; Subnets: unknown } } } };
    const network = service.Properties.NetworkConfiguration.AwsvpcConfiguration;
    expect(network.AssignPublicIp).toBe('DISABLED');
    const privateSubnets = synthesized.stack.network.vpc.privateSubnets.map((subnet) => logicalIdOf(synthesized.stack, subnet));
    expect(JSON.stringify(network.Subnets)).toContain(privateSubnets[0]);
    const groupId = logicalIdOf(synthesized.stack, synthesized.stack.delivery.node.findChild('WorkerSecurityGroup'));
    expect(JSON.stringify(network.SecurityGroups)).toContain(groupId);
    const group = template.findResources('AWS::EC2::SecurityGroup')[groupId] as { Properties: { SecurityGroupEgress: Array<Record<string, unknown>> } };
    expect(group.Properties.SecurityGroupEgress.map((rule) => rule['FromPort']).sort()).toEqual([25, 443]);
  });

  it('gives the worker the deliver Lambda\'s access plus the deliver queue it polls; no SES anywhere', () => {
    const role = synthesized.stack.delivery.worker?.taskDefinition.taskRole;
    const statements = roleStatements(synthesized, role);
    const deliverQueue = logicalIdOf(synthesized.stack, synthesized.stack.storage.queues.deliver.queue);
    expect(statements.some((statement) => mentions(statement, deliverQueue) && actionsOf(statement).includes('sqs:ReceiveMessage'))).toBe(true);
    const config = logicalIdOf(synthesized.stack, synthesized.stack.storage.tables.config);
    const configWrites = statements.filter((statement) => mentions(statement, config) && actionsOf(statement).includes('dynamodb:PutItem'));
    // Only the BATV key partition, as for the deliver Lambda.
    expect(FUNCTION_ACCESS.deliver.tables.config).toBe('read');
    expect(configWrites.map((statement) => statement.Condition)).toEqual([{ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['BATV'] } }]);
    template.resourceCountIs('AWS::SES::ConfigurationSet', 0);
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('ses:');
  });

  it('runs the ingress on Fargate with no EC2 capacity, still behind the NLB with client IPs preserved', () => {
    template.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 0);
    template.hasResourceProperties('AWS::ECS::Service', { LaunchType: 'FARGATE', LoadBalancers: Match.arrayWith([Match.objectLike({ ContainerPort: 2587 })]) });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { Port: 2525, TargetGroupAttributes: Match.arrayWith([{ Key: 'preserve_client_ip.enabled', Value: 'true' }]) });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MaxCapacity: 8, MinCapacity: 2 });
  });
});

describe('context parameters', () => {
  const parse = (context: Record<string, unknown>) => deploymentFromContext(new App({ context }).node);

  it('default to ses delivery on EC2 capacity', () => {
    expect(parse({})).toMatchObject({ deliveryMode: 'ses', ingressCapacity: 'ec2', domains: [], maxMessageBytes: 25 * 1024 * 1024 });
  });

  it('take lists and numbers as the CLI passes them (-c key=value)', () => {
    expect(parse({ domains: 'a.example, b.example', ingressMinTasks: '3' })).toMatchObject({ domains: ['a.example', 'b.example'], ingressMinTasks: 3 });
  });

  it('refuse an unknown delivery mode, a smarthost mode without relay host, and sizes out of range', () => {
    expect(() => parse({ deliveryMode: 'pigeon' })).toThrow(/deliveryMode/);
    expect(() => parse({ deliveryMode: 'smarthost' })).toThrow(/relayHost is required/);
    expect(() => parse({ deliveryMode: 'smarthost', relayHost: 'smtp.relay.example' })).toThrow(/relayHost: expected host:port/);
    expect(relayPort(parse({ deliveryMode: 'smarthost', relayHost: 'smtp.relay.example:587' }))).toBe(587);
    expect(() => parse({ maxMessageBytes: String(41 * 1024 * 1024) })).toThrow(/maxMessageBytes/);
  });
});
