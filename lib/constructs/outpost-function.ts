// One Lambda function of Outpost with the defaults all of them share: Node.js 22, an ESM bundle
// built by the local esbuild (no Docker) with every dependency inside (the pinned AWS SDK too),
// JSON logs with a retention, inside the VPC's private subnets.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The esbuild options of every function. ESM needs `require` defined for the CommonJS packages
 * inside the bundle (nodemailer, mailparser...): the banner makes one with `createRequire`.
 * Shared with the test that bundles each entry the same way.
 */
export const BUNDLING = {
  format: nodejs.OutputFormat.ESM,
  target: 'node22',
  platform: 'node',
  mainFields: ['module', 'main'],
  banner: "import { createRequire as __outpostCreateRequire } from 'node:module'; const require = __outpostCreateRequire(import.meta.url);",
  // NodejsFunction leaves @aws-sdk/* out by default (the runtime's copy): ship the pinned one.
  externalModules: [] as string[],
  minify: true,
  sourceMap: true,
} as const;

export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_22_X;

export interface OutpostFunctionProps {
  /** The entry file, relative to the repository root, e.g. `lambdas/scan/index.ts`. */
  readonly entry: string;
  readonly description: string;
  readonly vpc: ec2.IVpc;
  /** Security group of the function. Default: a new one with all egress allowed. */
  readonly securityGroup?: ec2.ISecurityGroup;
  /** Default: 60 seconds. */
  readonly timeout?: Duration;
  /** Default: 1024 MB (parsing and DKIM signing are CPU-bound; CPU grows with memory). */
  readonly memorySize?: number;
  readonly environment?: Record<string, string>;
  /** Days the function's logs are kept. Default: 90. */
  readonly logRetention?: logs.RetentionDays;
}

export class OutpostFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: OutpostFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN });
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: `${ROOT}${props.entry}`,
      handler: 'handler',
      projectRoot: ROOT,
      depsLockFilePath: `${ROOT}package-lock.json`,
      description: props.description,
      runtime: LAMBDA_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout ?? Duration.seconds(60),
      memorySize: props.memorySize ?? 1024,
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      ...(props.securityGroup ? { securityGroups: [props.securityGroup] } : {}),
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_METRICS_NAMESPACE: 'Outpost',
        ...props.environment,
      },
      bundling: { ...BUNDLING, externalModules: [...BUNDLING.externalModules], mainFields: [...BUNDLING.mainFields] },
    });
  }
}
