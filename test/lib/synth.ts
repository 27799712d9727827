// Synthesizes the Outpost stack in-process, as `cdk synth` does, with cdk-nag's AwsSolutions
// checks. Lambda bundling is skipped here (the bundles are built and run by lambda-bundles.test.ts),
// and the ingress image comes from a registry name instead of a Docker build.
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
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
