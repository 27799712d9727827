// The deployment's parameters, read from CDK context (`cdk.json`, or `-c key=value` on the command
// line) and checked once, so that a typo fails the synth instead of deploying a default.
import type { Node } from 'constructs';
import { z } from 'zod';

export const DELIVERY_MODES = ['ses', 'smarthost', 'mx'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

const list = z.preprocess((value) => (typeof value === 'string' ? value.split(',').map((item) => item.trim()).filter(Boolean) : value), z.array(z.string().min(1)));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const deploymentSchema = z
  .object({
    /** The relay's public host name: HELO name, TLS certificate name, reverse DNS of the sending IPs. */
    hostname: z.string().min(1).default('mail.example.com'),
    /** The operator's own sending domains; in `ses` mode each becomes an SES email identity. */
    domains: list.default([]),
    /** `ses` (SESv2 raw send), `smarthost` (SMTP relay on 587, from Lambda), `mx` (port 25 from an ECS worker). */
    deliveryMode: z.enum(DELIVERY_MODES).default('ses'),
    /** `host:port` of the smarthost (mode `smarthost`); the deliver Lambda may connect to that port only. */
    relayHost: z
      .string()
      .regex(/^((\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5})?$/, 'expected host:port')
      .default(''),
    /** Where the ingress tasks run: EC2 capacity (default) or Fargate. */
    ingressCapacity: z.enum(['ec2', 'fargate']).default('ec2'),
    /** EC2 instance type of the ingress capacity. */
    ingressInstanceType: z.string().default('c7i.large'),
    ingressMinTasks: int(1, 100).default(2),
    ingressMaxTasks: int(1, 1000).default(20),
    /** Average SMTP sessions per ingress task the autoscaling aims at. */
    sessionsPerTask: int(10, 100_000).default(500),
    /** Availability zones of the VPC. */
    maxAzs: int(2, 6).default(2),
    /** NAT gateways (their Elastic IPs are the sending IPs in `mx` mode). */
    natGateways: int(1, 6).default(2),
    /** Existing Elastic IP allocations for the NAT gateways, so the sending IPs survive a redeploy. */
    natEipAllocationIds: list.default([]),
    /** Largest message accepted, in bytes (SES raw send takes up to 40 MB). */
    maxMessageBytes: int(1024, 40 * 1024 * 1024).default(25 * 1024 * 1024),
    /** Days message content is kept in S3 after it was received. */
    messageRetentionDays: int(1, 3650).default(30),
    /** Days bounces and held-message reports are kept in S3. */
    reportRetentionDays: int(1, 3650).default(14),
    /** Email address subscribed to the alarm topic (none by default). */
    alarmEmail: z.string().default(''),
  })
  .strict();

export type Deployment = z.infer<typeof deploymentSchema>;

/** The context keys this app reads (others, such as CDK's own feature flags, are ignored). */
export const DEPLOYMENT_KEYS = Object.keys(deploymentSchema.shape) as Array<keyof Deployment>;

/** The smarthost's port (`relayHost` is `host:port`), the one SMTP port the deliver Lambda may reach. */
export function relayPort(deployment: Pick<Deployment, 'relayHost'>): number | undefined {
  const port = Number(deployment.relayHost.slice(deployment.relayHost.lastIndexOf(':') + 1));
  return deployment.relayHost && Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}

export function deploymentFromContext(node: Node): Deployment {
  const raw: Record<string, unknown> = {};
  for (const key of DEPLOYMENT_KEYS) {
    const value: unknown = node.tryGetContext(key);
    if (value !== undefined) raw[key] = value;
  }
  const parsed = deploymentSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`invalid context: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  if (parsed.data.deliveryMode === 'smarthost' && !parsed.data.relayHost) throw new Error('invalid context: relayHost is required when deliveryMode is smarthost');
  return parsed.data;
}
