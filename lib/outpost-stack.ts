// Outpost on AWS, in the order a message flows:
//
//   clients ──587/465/25──▶ NLB ──▶ Ingress (ECS) ──▶ S3 (content) + SQS scan
//   SQS scan ──▶ Scan λ ──(clamd, rspamd: Scanning, ECS)──▶ SQS deliver | quarantine
//   SQS deliver ──▶ Deliver λ (ses | smarthost) or the deliver worker (mx, ECS) ──▶ SES | SMTP
//   SES events ──EventBridge──▶ SQS ses-events ──▶ Bounce λ ◀── SQS bounce ◀── Ingress (port 25)
//   tenants ──▶ API Gateway ──▶ API λ          every entry ──▶ DynamoDB, KMS, Secrets Manager
//   alarms and dashboard: Monitoring
import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { FUNCTION_ACCESS } from './access.js';
import { Api } from './constructs/api.js';
import { Delivery } from './constructs/delivery.js';
import { Ingress } from './constructs/ingress.js';
import { Monitoring } from './constructs/monitoring.js';
import { Network } from './constructs/network.js';
import { CONSUMER_TIMEOUTS, Pipeline } from './constructs/pipeline.js';
import { Scanning } from './constructs/scanning.js';
import { Storage } from './constructs/storage.js';
import { acknowledgeFindings } from './nag.js';
import { relayPort, type Deployment } from './settings.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface OutpostStackProps extends StackProps {
  readonly deployment: Deployment;
  /** The ingress image. Default: built from `smtp-ec2/Dockerfile` at deploy time. */
  readonly image?: ecs.ContainerImage;
}

export class OutpostStack extends Stack {
  readonly network: Network;
  readonly storage: Storage;
  readonly scanning: Scanning;
  readonly ingress: Ingress;
  readonly delivery: Delivery;
  readonly pipeline: Pipeline;
  readonly api: Api;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: OutpostStackProps) {
    super(scope, id, props);
    const { deployment } = props;
    const image = props.image ?? ecs.ContainerImage.fromAsset(ROOT, { file: 'smtp-ec2/Dockerfile', platform: Platform.LINUX_AMD64 });

    this.network = new Network(this, 'Network', {
      maxAzs: deployment.maxAzs,
      natGateways: deployment.natGateways,
      natEipAllocationIds: deployment.natEipAllocationIds,
    });
    this.storage = new Storage(this, 'Storage', {
      consumerTimeouts: CONSUMER_TIMEOUTS,
      messageRetentionDays: deployment.messageRetentionDays,
      reportRetentionDays: deployment.reportRetentionDays,
    });
    const { storage } = this;

    const environment = {
      ...storage.environment(),
      OUTPOST_HOSTNAME: deployment.hostname,
      OUTPOST_DELIVERY_MODE: deployment.deliveryMode,
      OUTPOST_MAX_MESSAGE_BYTES: String(deployment.maxMessageBytes),
      ...(deployment.relayHost ? { OUTPOST_RELAY_HOST: deployment.relayHost } : {}),
    };
    const containerSecrets = {
      OUTPOST_OPERATOR_TOKEN: ecs.Secret.fromSecretsManager(storage.operatorToken),
      OUTPOST_TLS_KEY_PEM: ecs.Secret.fromSecretsManager(storage.tlsCertificate, 'key'),
      OUTPOST_TLS_CERT_PEM: ecs.Secret.fromSecretsManager(storage.tlsCertificate, 'cert'),
    };

    this.scanning = new Scanning(this, 'Scanning', { cluster: this.network.cluster, namespace: this.network.namespace });

    this.ingress = new Ingress(this, 'Ingress', {
      cluster: this.network.cluster,
      image,
      environment,
      secrets: containerSecrets,
      accessLogs: storage.accessLogs,
      capacity: deployment.ingressCapacity,
      instanceType: new ec2.InstanceType(deployment.ingressInstanceType),
      minTasks: deployment.ingressMinTasks,
      maxTasks: deployment.ingressMaxTasks,
      sessionsPerTask: deployment.sessionsPerTask,
    });
    storage.grantPipelineAccess(this.ingress.taskRole);

    this.delivery = new Delivery(this, 'Delivery', {
      mode: deployment.deliveryMode,
      domains: deployment.domains,
      sesEvents: storage.queues['ses-events'].queue,
      ...(deployment.deliveryMode === 'mx'
        ? { worker: { cluster: this.network.cluster, image, environment, secrets: { OUTPOST_OPERATOR_TOKEN: containerSecrets.OUTPOST_OPERATOR_TOKEN } } }
        : {}),
    });
    // Each mode is told about its own way out only.
    const deliveryEnvironment = {
      ...environment,
      ...(this.delivery.configurationSet ? { OUTPOST_SES_CONFIGURATION_SET: this.delivery.configurationSet.configurationSetName } : {}),
      ...(deployment.deliveryMode === 'smarthost' ? { OUTPOST_RELAY_CREDENTIALS_SECRET: storage.relayCredentials.secretArn } : {}),
    };
    if (this.delivery.worker) {
      // The worker runs the deliver handler: the deliver Lambda's access, and it polls the queue itself.
      const workerRole = this.delivery.worker.taskDefinition.taskRole;
      storage.grant(workerRole, FUNCTION_ACCESS.deliver);
      storage.queues.deliver.queue.grantConsumeMessages(workerRole);
    }

    this.pipeline = new Pipeline(this, 'Pipeline', {
      vpc: this.network.vpc,
      storage,
      scanning: this.scanning,
      delivery: this.delivery,
      mode: deployment.deliveryMode,
      ...(deployment.deliveryMode === 'smarthost' ? { relayPort: relayPort(deployment) } : {}),
      environment: deliveryEnvironment,
    });

    this.api = new Api(this, 'Api', { vpc: this.network.vpc, environment: { ...deliveryEnvironment, OUTPOST_OPERATOR_TOKEN_SECRET: storage.operatorToken.secretArn } });
    storage.grant(this.api.handler.function, FUNCTION_ACCESS.api);
    storage.operatorToken.grantRead(this.api.handler.function);
    // Verified tenant domains become SES identities (ses mode); the API never sends mail itself.
    if (deployment.deliveryMode === 'ses') this.delivery.grantManageIdentities(this.api.handler.function);

    this.monitoring = new Monitoring(this, 'Monitoring', {
      key: storage.key,
      queues: storage.queues,
      functions: [...this.pipeline.functions, this.api.handler],
      targetGroups: this.ingress.targetGroups,
      ...(deployment.alarmEmail ? { alarmEmail: deployment.alarmEmail } : {}),
    });

    acknowledgeFindings(this);
  }
}
