// `cdk synth` / `cdk deploy` entry (cdk.json: `npx tsx lib/app.ts`). The deployment's parameters
// come from context (see lib/settings.ts); every synth runs cdk-nag's AwsSolutions checks.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OutpostStack } from './outpost-stack.js';
import { deploymentFromContext } from './settings.js';

const app = new App();
const stackName = typeof app.node.tryGetContext('stackName') === 'string' ? String(app.node.tryGetContext('stackName')) : 'Outpost';
const account = process.env.CDK_DEFAULT_ACCOUNT;
// The NLB's access logs need a region at synth time (the log delivery account differs per region).
const region = process.env.CDK_DEFAULT_REGION ?? (typeof app.node.tryGetContext('region') === 'string' ? String(app.node.tryGetContext('region')) : 'eu-west-1');
new OutpostStack(app, stackName, {
  deployment: deploymentFromContext(app.node),
  env: { ...(account ? { account } : {}), region },
  description: 'Outpost: outgoing-mail filtering relay',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
