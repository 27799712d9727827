// The tenant and operator API: an API Gateway HTTP API in front of the API Lambda (the same hono
// app as on the single node). The app authenticates every request itself (operator token or
// tenant API key), so the gateway adds throttling and access logs, not an authorizer.
import { Duration } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { OutpostFunction } from './outpost-function.js';

export interface ApiProps {
  readonly vpc: ec2.IVpc;
  readonly environment: Record<string, string>;
  /** Requests per second across the API (steady). Default: 100. */
  readonly rateLimit?: number;
  /** Burst of requests above the rate. Default: 200. */
  readonly burstLimit?: number;
}

export class Api extends Construct {
  readonly handler: OutpostFunction;
  readonly httpApi: apigwv2.HttpApi;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.handler = new OutpostFunction(this, 'Handler', {
      entry: 'lambdas/api/index.ts',
      description: 'Outpost: tenant and operator API',
      vpc: props.vpc,
      timeout: Duration.seconds(29),
      environment: { ...props.environment, POWERTOOLS_SERVICE_NAME: 'api' },
    });
    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      description: 'Outpost API',
      defaultIntegration: new HttpLambdaIntegration('Integration', this.handler.function),
      createDefaultStage: false,
    });
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.THREE_MONTHS });
    new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 100, burstLimit: props.burstLimit ?? 200 },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        // No headers, no bodies: the Authorization header carries the token.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            time: '$context.requestTime',
            method: '$context.httpMethod',
            path: '$context.path',
            status: '$context.status',
            latencyMs: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
  }
}
