// Synthesizes the Outpost stack in-process, as `cdk synth` does, with cdk-nag's AwsSolutions
// checks. Lambda bundling is skipped here (the bundles are built and run by lambda-bundles.test.ts),
// and the ingress image comes from a registry name instead of a Docker build.
import { App, CfnElement, Validations, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OutpostStack } from '../../lib/outpost-stack.js';
import { deploymentFromContext } from '../../lib/settings.js';

export const TEST_ENV = { account: '123456789012', region: 'eu-west-1' };

export interface Synthesized {
  stack: OutpostStack;
  template: Template;
}

export function synthOutpost(context: Record<string, unknown> = {}): Synthesized {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
  const stack = new OutpostStack(app, 'Outpost', {
    deployment: deploymentFromContext(app.node),
    env: TEST_ENV,
    image: ecs.ContainerImage.fromRegistry('outpost/smtp-ec2:test'),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  // Throws "Validation failed" with the report if cdk-nag finds anything not acknowledged.
  app.synth();
  return { stack, template: Template.fromStack(stack) };
}

export interface PolicyStatement {
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

/** The CloudFormation logical id of a construct's resource. */
export function logicalIdOf(stack: Stack, construct: IConstruct): string {
  const resource = construct.node.defaultChild;
  if (!resource || !CfnElement.isCfnElement(resource)) throw new Error(`${construct.node.path} has no CloudFormation resource`);
  return stack.getLogicalId(resource);
}

/** Every statement of the inline and managed policies attached to `role` in the template. */
export function roleStatements({ stack, template }: Synthesized, role: iam.IRole | undefined): PolicyStatement[] {
  if (!role) throw new Error('no role');
  const roleId = logicalIdOf(stack, role);
  const policies = [...Object.values(template.findResources('AWS::IAM::Policy')), ...Object.values(template.findResources('AWS::IAM::ManagedPolicy'))] as Array<{ Properties: { Roles?: unknown; PolicyDocument: { Statement: PolicyStatement[] } } }>;
  return policies.filter((policy) => JSON.stringify(policy.Properties.Roles ?? []).includes(`"${roleId}"`)).flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

export const actionsOf = (statement: PolicyStatement): string[] => (Array.isArray(statement.Action) ? statement.Action : [statement.Action]);
export const mentions = (statement: PolicyStatement, id: string): boolean => JSON.stringify(statement.Resource).includes(`"${id}"`);
