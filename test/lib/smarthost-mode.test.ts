// `smarthost` delivery: the deliver Lambda sends every message through the operator's smarthost
// on its submission port. No SES at all (no configuration set, identities, event rule or SES
// permissions); the deliver Lambda is told the smarthost and may read its credentials, and its
// security group lets it out to that port and to the AWS APIs only.
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { actionsOf, logicalIdOf, mentions, roleStatements, synthOutpost, type Synthesized } from './synth.js';

let synthesized: Synthesized;
let template: Template;

beforeAll(() => {
  synthesized = synthOutpost({ deliveryMode: 'smarthost', relayHost: 'smtp.relay.example:2525', domains: 'example.org' });
  template = synthesized.template;
}, 120_000);

const deliverFunction = () => {
  const deliver = synthesized.stack.pipeline.deliver;
  if (!deliver) throw new Error('smarthost mode has a deliver Lambda');
  return deliver.function;
};

describe('smarthost delivery', () => {
  it('needs no SES: no configuration set, no identities (not even for the operator\'s domains), no SES event rule', () => {
    expect(synthesized.stack.delivery.configurationSet).toBeUndefined();
    template.resourceCountIs('AWS::SES::ConfigurationSet', 0);
    template.resourceCountIs('AWS::SES::ConfigurationSetEventDestination', 0);
    template.resourceCountIs('AWS::SES::EmailIdentity', 0);
    expect(Object.values(template.findResources('AWS::Events::Rule')).filter((rule) => JSON.stringify(rule).includes('aws.ses'))).toEqual([]);
  });

  it('gives the deliver Lambda the smarthost and its credentials secret, and no SES configuration set', () => {
    const fn = template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('signs and delivers messages \\(smarthost\\)') } });
    const [deliver] = Object.values(fn) as Array<{ Properties: { Environment: { Variables: Record<string, unknown> } } }>;
    const variables = deliver?.Properties.Environment.Variables ?? {};
    expect(variables).toMatchObject({ OUTPOST_DELIVERY_MODE: 'smarthost', OUTPOST_RELAY_HOST: 'smtp.relay.example:2525', OUTPOST_RELAY_CREDENTIALS_SECRET: { Ref: logicalIdOf(synthesized.stack, synthesized.stack.storage.relayCredentials) } });
    expect(variables).not.toHaveProperty('OUTPOST_SES_CONFIGURATION_SET');

    const statements = roleStatements(synthesized, deliverFunction().role);
    const secretId = logicalIdOf(synthesized.stack, synthesized.stack.storage.relayCredentials);
    expect(statements.some((statement) => mentions(statement, secretId) && actionsOf(statement).includes('secretsmanager:GetSecretValue'))).toBe(true);
  });

  it('lets no function use SES, and only the deliver Lambda read the smarthost credentials', () => {
    const secretId = logicalIdOf(synthesized.stack, synthesized.stack.storage.relayCredentials);
    for (const { function: fn, node } of [...synthesized.stack.pipeline.functions, synthesized.stack.api.handler]) {
      const statements = roleStatements(synthesized, fn.role);
      expect({ fn: node.id, ses: statements.flatMap(actionsOf).filter((action) => action.startsWith('ses:')) }).toEqual({ fn: node.id, ses: [] });
      expect({ fn: node.id, secret: statements.some((statement) => mentions(statement, secretId)) }).toEqual({ fn: node.id, secret: node.id === 'Deliver' });
    }
  });

  it('lets the deliver Lambda out on the smarthost\'s port and HTTPS only, inside the VPC', () => {
    const groupId = logicalIdOf(synthesized.stack, synthesized.stack.pipeline.node.findChild('DeliverSecurityGroup'));
    const group = template.findResources('AWS::EC2::SecurityGroup')[groupId] as { Properties: { SecurityGroupEgress: Array<Record<string, unknown>> } };
    const egress = group.Properties.SecurityGroupEgress.map((rule) => ({ port: rule['FromPort'], to: rule['ToPort'], protocol: rule['IpProtocol'], cidr: rule['CidrIp'] }));
    expect(egress).toEqual(
      expect.arrayContaining([
        { port: 443, to: 443, protocol: 'tcp', cidr: '0.0.0.0/0' },
        { port: 2525, to: 2525, protocol: 'tcp', cidr: '0.0.0.0/0' },
      ]),
    );
    expect(egress).toHaveLength(2);
    const fn = template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('\\(smarthost\\)') } });
    expect(JSON.stringify(Object.values(fn)[0])).toContain(groupId);
  });
});
