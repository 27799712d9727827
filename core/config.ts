// One typed schema for the whole configuration. The `.describe()` text of each field is its
// documentation: the README's settings table is generated from it (`npx outpost config docs`).
// Sources, later wins: built-in defaults < config file < environment variables.
import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { settingOverridesSchema } from './settings.js';
import { normaliseCidr } from './identity.js';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port');

function isCidr(value: string): boolean {
  try {
    normaliseCidr(value);
    return true;
  } catch {
    return false;
  }
}

export const DEFAULT_RETRY_SCHEDULE = [
  60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 43200, 43200, 43200, 43200,
];

export const configSchema = z
  .object({
    dataDir: z
      .string()
      .default('./data')
      .describe('Folder for the SQLite database, message blobs, TLS certificate and secrets. Env OUTPOST_DATA_DIR.'),
    hostname: z
      .string()
      .default('localhost')
      .describe('Name this relay gives in its SMTP greeting, in EHLO when delivering, and in DSNs. Env OUTPOST_HOSTNAME.'),
    listenAddress: z
      .string()
      .default('0.0.0.0')
      .describe('Address the SMTP and HTTP listeners bind to. Env OUTPOST_LISTEN_ADDRESS.'),
    smtp: z
      .object({
        port: z.number().int().min(0).max(65535).default(2587).describe('Submission port (STARTTLS, then AUTH). Env OUTPOST_SMTP_PORT.'),
        smtpsPort: z.number().int().min(0).max(65535).default(2465).describe('Submission port with implicit TLS. Env OUTPOST_SMTPS_PORT.'),
        bouncePort: z.number().int().min(0).max(65535).default(2525).describe('Port that receives bounces (DSNs) addressed to BATV-tagged senders. Env OUTPOST_BOUNCE_PORT.'),
        maxMessageBytes: z.number().int().positive().default(26_214_400).describe('Largest message any user may send, in bytes; advertised as SIZE. Per-user limits (setting maxMessageBytes) can only be lower.'),
        maxRecipients: z.number().int().positive().default(100).describe('Recipients accepted in one message; the next RCPT gets 452 4.5.3.'),
        maxCommandLength: z.number().int().min(512).default(4096).describe('Longest SMTP command line accepted, in octets.'),
        maxLineLength: z.number().int().min(998).default(998).describe('Longest text line accepted in DATA, in octets, CRLF not counted. RFC 5322 allows 998, and so does Exim by default: longer lines are split by servers downstream, which breaks their DKIM signature. Raise it only for clients that cannot be fixed.'),
        greetingDelayMs: z.number().int().min(0).max(10_000).default(0).describe('Pause before the greeting on the submission ports, in milliseconds; a client that sends a command during it is answered 421 "You talk too soon" and disconnected (early-talker detection, as smtp-server\'s fixed 100 ms). 0 greets at once: submission clients authenticate, and a pause caps the new connections a second each session can make (20 sessions and 100 ms: 200 messages/s for clients that connect per message).'),
        bounceGreetingDelayMs: z.number().int().min(0).max(10_000).default(100).describe('The same pause on the bounce listener, which any server on the Internet reaches; early talkers there are mostly spam software.'),
        socketTimeoutSeconds: z.number().int().positive().default(300).describe('Idle time after which a client connection is closed.'),
        closeTimeoutSeconds: z.number().int().positive().default(30).describe('On SIGTERM, how long sessions in flight may take before they get 421 and are closed.'),
        authCacheSeconds: z.number().int().min(0).max(86_400).default(300).describe('How long a password verified right at AUTH is remembered (as Dovecot\'s auth_cache_ttl), so that a client that logs in on every connection pays the scrypt hash once in this time rather than on each. Only successes are remembered, keyed by an HMAC of the stored hash and the password under a key drawn at start: a wrong guess always costs the full hash, a changed password never matches, and a login blocked for failures is always hashed. 0 hashes every AUTH.'),
        maxSessions: z.number().int().positive().default(1000).describe('Sessions each submission listener (STARTTLS and implicit TLS) holds at once; beyond, 421 4.7.0.'),
        maxSessionsPerAddress: z.number().int().positive().default(50).describe('Concurrent sessions one client address may hold on each SMTP listener (as Postfix\'s smtpd_client_connection_count_limit); beyond, 421 4.7.0 and the connection is closed.'),
        sessionCapExemptions: z
          .array(z.string().refine(isCidr, 'expected an IP address or CIDR range'))
          .default([])
          .describe('IP addresses or CIDR ranges exempt from maxSessionsPerAddress (a webmail host, a customer\'s mail server registered as an IP user); the listener totals still apply.'),
        bounceMaxSessions: z.number().int().positive().default(200).describe('Sessions the bounce listener holds at once; beyond, 421 4.7.0.'),
        tlsKeyFile: z.string().optional().describe('PEM private key for STARTTLS and implicit TLS; if unset, a self-signed certificate is created in dataDir/tls on first start. Env OUTPOST_TLS_KEY_FILE.'),
        tlsCertFile: z.string().optional().describe('PEM certificate chain matching tlsKeyFile. Env OUTPOST_TLS_CERT_FILE.'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        port: z.number().int().min(0).max(65535).default(8025).describe('HTTP port: API (/v1), control panel (/), /healthz, /metrics. Env OUTPOST_HTTP_PORT.'),
        metricsToken: z.string().min(16).optional().describe('Bearer token a scraper sends to read /metrics (the operator token works too). Env OUTPOST_METRICS_TOKEN.'),
        publicMetrics: z.boolean().default(false).describe('Serve /metrics without a token, to anyone who reaches the HTTP port (the behaviour before tokens were required).'),
      })
      .strict()
      .prefault({}),
    operatorToken: z
      .string()
      .min(16)
      .optional()
      .describe('Operator bearer token for the API and panel. Env OUTPOST_OPERATOR_TOKEN; if unset, one is generated once into dataDir/operator-token and printed at start.'),
    delivery: z
      .object({
        relayHost: hostPort.optional().describe('host:port of a smarthost to deliver all mail through instead of MX lookup. Env OUTPOST_RELAY_HOST.'),
        retrySchedule: z
          .array(z.number().int().positive())
          .min(1)
          .default(DEFAULT_RETRY_SCHEDULE)
          .describe('Seconds to wait before each further delivery attempt after a temporary failure; when the list is used up the message expires and bounces. The default spans about 3 days. Env OUTPOST_RETRY_SCHEDULE (comma separated).'),
        connectTimeoutSeconds: z.number().int().positive().default(30).describe('TCP connect and greeting timeout when delivering.'),
        requireTls: z.boolean().default(false).describe('Refuse to deliver in plaintext, and verify the receiver\'s certificate and name (a failure is temporary, never a fallback to plaintext). By default STARTTLS to MX hosts is used whenever offered, unverified; a smarthost given by name is always verified.'),
        tlsCaFile: z.string().optional().describe('PEM file of extra certificate authorities trusted when a receiver\'s certificate is verified (requireTls, or a smarthost given by name), in addition to the system\'s.'),
        allowPrivateMxAddresses: z.boolean().default(false).describe('Deliver to MX hosts (and address literals) whose addresses are loopback, private or link-local. Off by default: such records would let a recipient domain point the relay at internal servers. A smarthost (relayHost) is always allowed.'),
        mxAddressLimit: z.number().int().min(1).default(5).describe('Most MX addresses tried in one delivery attempt (as Postfix\'s smtp_mx_address_limit); the rest wait for the next attempt.'),
        attemptTimeoutSeconds: z.number().int().positive().default(240).describe('Time budget of one delivery attempt to one destination, over all its MX addresses; no further address is tried once it is spent. Keep it below queue.visibilityTimeoutSeconds.'),
        concurrency: z.number().int().min(1).default(50).describe('Delivery jobs the single node runs at once, independent of queue batches: a slow destination holds only its own slots.'),
        destinationConcurrency: z.number().int().min(1).default(10).describe('Concurrent deliveries to one destination (recipient domain, or the smarthost); jobs for a destination at its limit wait briefly, then are postponed for a few seconds without using up a retry.'),
        connectionIdleSeconds: z.number().int().min(0).default(2).describe('How long an outbound SMTP session stays open after a delivery, to carry the next message to the same destination (as Postfix\'s connection cache, whose smtp_connection_cache_time_limit is also 2s); 0 opens a new session per message. Sessions to one destination, idle ones included, never exceed destinationConcurrency.'),
        messagesPerConnection: z.number().int().min(1).default(100).describe('Messages sent over one outbound SMTP session before it is closed and a new one opened.'),
      })
      .strict()
      .prefault({}),
    dns: z
      .object({
        servers: z.array(hostPort).default([]).describe('DNS servers (host:port) for every lookup Outpost makes; empty means the system resolver. Env OUTPOST_DNS_SERVERS (comma separated).'),
        timeoutMs: z.number().int().positive().default(3000).describe('Timeout of one DNS query.'),
        cacheSeconds: z.number().int().min(0).default(60).describe('Longest time the SMTP admission checks (sender and recipient domains, DNSBL) keep a DNS answer: A/AAAA for their TTL up to this, MX, TXT, NXDOMAIN and no-records answers for this long (node:dns does not report their TTL); failures are never kept. 0 turns the cache off. Delivery always asks afresh.'),
      })
      .strict()
      .prefault({}),
    queue: z
      .object({
        visibilityTimeoutSeconds: z.number().int().positive().default(300).describe('How long a received queue message stays invisible before another worker may receive it again.'),
        maxReceives: z.number().int().positive().default(10).describe('Receives after which a message that keeps failing is moved to its dead-letter queue.'),
        pollIntervalMs: z.number().int().positive().default(250).describe('How often the single node polls an empty queue.'),
        batchSize: z.number().int().min(1).max(10).default(10).describe('Messages handed to a handler at once (SQS batch size).'),
        holdCheckSeconds: z.number().int().positive().default(30).describe('How often the single node re-queues held mail whose sender is free again: a timed lock that ended releases the mail within this time.'),
        pipelineNice: z.number().int().min(0).max(19).default(10).describe('Scheduling niceness of the pipeline\'s worker thread (Linux; 0 to 19, higher yields more): under a burst the SMTP sessions come first and the queue absorbs the difference, and an idle relay still gives the pipeline whole cores. 0 shares the CPU evenly.'),
        threadWatchdogSeconds: z.number().min(0).default(60).describe('How long a worker thread of the single node may stay silent before it counts as hung (its event loop blocked: a scan that never ends, a native call that never returns): the pipeline thread without its heartbeat (one a second), the acceptance writer and the counter thread with work in hand and no answer. A hung thread is logged, terminated and started again: the batch or calls it held fail with 451 4.3.0 (the clients retry), the pipeline\'s messages in flight are received again. 0 turns the watchdog off.'),
        burstMessagesPerSecond: z.number().int().positive().default(100).describe('The single node\'s ingress is in a burst (see burstDeferSeconds) while it has queued at least this many messages in the last second.'),
        burstDeferSeconds: z.number().min(0).default(10).describe('During an ingress burst (at least burstMessagesPerSecond messages queued in the last second) the single node\'s pipeline leaves messages younger than this in the scan queue, so that the SMTP sessions of the burst have the CPU and the database to themselves and the queue absorbs the burst; the pipeline catches up after it. Under a load that never ends every message waits this long before its scan, and the pipeline then runs as without it: it adds latency, never a limit on throughput. 0 scans every message at once.'),
        pipelineWorker: z.boolean().default(true).describe('Run the single node\'s pipeline (scan, DKIM signing, delivery, bounces) in a worker thread with its own database connection, so that it uses a second core and never holds up the SMTP sessions; false runs it on the relay\'s own thread.'),
        inlineBodyBytes: z.number().int().min(0).default(256 * 1024).describe('Messages up to this size (Received header included) are stored by the single node in its database, in the commit that queues them (one fsync for many messages), instead of a file each; larger ones go to a file under blobs/. Each session in DATA holds up to this much in memory. 0 stores every message in a file. Not used on AWS (S3).'),
        inlineBodyMemoryBytes: z.number().int().min(0).default(64 * 1024 * 1024).describe('Most bytes of such small messages all sessions hold in memory at once, from DATA until their commit; a message that would go past it is stored in a file, as a large one is. Bounds the memory a flood of sessions can take with messages just under inlineBodyBytes.'),
      })
      .strict()
      .prefault({}),
    messageLog: z
      .object({
        retentionDays: z.number().int().min(1).default(90).describe('Days a message and its events stay in the message log (search, statistics, bounce attribution) before housekeeping removes them.'),
      })
      .strict()
      .prefault({}),
    bounces: z
      .object({
        maxRecipients: z.number().int().min(1).default(100).describe('Recipients read from one bounce; the rest are ignored. Only recipients of the attributed original message are ever suppressed or counted.'),
        maxRefusedRcpts: z.number().int().min(1).default(3).describe('Refused RCPT TO commands on one bounce-listener connection; the last one is answered 421 4.7.0 and the connection is closed (slows down guessing of BATV tags).'),
        perClientIpPerHour: z.number().int().min(1).default(300).describe('RCPT TO commands one source IP may give the bounce listener per hour, refused ones included; more get 450 4.7.1.'),
        perReturnPathPerHour: z.number().int().min(1).default(30).describe('Bounces accepted for one return path (the sender address under its BATV tag, whatever the tag) per hour; more get 450 4.7.1.'),
        orphanHours: z.number().int().min(1).default(24).describe('Age after which housekeeping removes a stored bounce that no queued bounce job refers to (handled bounces are removed at once).'),
      })
      .strict()
      .prefault({})
      .describe('The bounce listener and the bounce stage: what one bounce may change, and how much an outsider may send.'),
    scanning: z
      .object({
        clamd: z.string().min(1).optional().describe('clamd to scan every message with (INSTREAM): host:port or a Unix socket path. Unset means no virus scanning, announced loudly at start. Env OUTPOST_CLAMD.'),
        rspamdUrl: z.string().url().optional().describe('Base URL of rspamd\'s normal worker (e.g. http://127.0.0.1:11333); messages are POSTed to /checkv2 with the sender\'s user, IP, HELO and envelope. Env OUTPOST_RSPAMD_URL.'),
        spamd: hostPort.optional().describe('host:port of SpamAssassin spamd (used when rspamdUrl is unset). Neither set: the built-in rules (GTUBE and a few obvious patterns), announced loudly at start. Env OUTPOST_SPAMD.'),
        engineTimeoutMs: z.number().int().positive().default(30_000).describe('Time one engine call may take; a timeout defers the message (retried later), it is never delivered unscanned.'),
        maxMimeDepth: z.number().int().min(1).default(20).describe('Deepest MIME nesting (multipart and attached messages) accepted; deeper messages are quarantined (MIME_TOO_DEEP).'),
        maxMimeParts: z.number().int().min(1).default(500).describe('Most MIME parts accepted in one message; more are quarantined (MIME_TOO_MANY_PARTS).'),
        fuzzyMaxDistance: z.number().int().min(0).max(7).default(5).describe('Bits (of 64) two body fingerprints may differ in and still be near-duplicates.'),
        fuzzyMinWords: z.number().int().min(1).default(20).describe('Bodies with fewer words get no fuzzy fingerprint (short texts collide).'),
        fuzzySpamScore: z.number().min(0).default(8).describe('Score of FUZZY_SPAM_MATCH: the body is a near-duplicate of known spam.'),
        bulkIdentities: z.number().int().min(2).default(10).describe('Different sending identities with the same body fingerprint within bulkWindowMinutes that make a campaign (BULK_CAMPAIGN).'),
        bulkWindowMinutes: z.number().int().positive().default(60).describe('Window of the bulk detector, in minutes.'),
        bulkScore: z.number().min(0).default(8).describe('Score of BULK_CAMPAIGN.'),
        learnFromSpam: z.boolean().default(true).describe('Add the body fingerprint and attachment hashes of spam verdicts to the blocklists (virus verdicts always add their attachment hashes).'),
        fingerprintRetentionDays: z.number().int().positive().default(30).describe('How long learned fingerprints and bulk sightings are kept.'),
        quarantineRetentionDays: z.number().int().positive().default(30).describe('How long quarantined messages are kept before they are deleted.'),
        builtinRules: z
          .object({
            gtube: z.number().default(1000).describe('GTUBE test pattern in the message.'),
            subjectAllCaps: z.number().default(2).describe('Subject of 10 or more letters, all capitals.'),
            missingDate: z.number().default(1).describe('No Date header.'),
            missingMessageId: z.number().default(1.5).describe('No Message-ID header.'),
            urlToIp: z.number().default(2).describe('A link to a bare IP address.'),
            advanceFee: z.number().default(4).describe('Three or more advance-fee / lottery phrases.'),
          })
          .strict()
          .prefault({})
          .describe('Scores of the built-in rules used when no spam engine is configured.'),
      })
      .strict()
      .prefault({}),
    policy: z
      .object({
        dnsblZones: z
          .array(z.string().regex(/^([A-Za-z0-9-]+\.)+[A-Za-z0-9-]+$/, 'expected a DNS zone'))
          .default([])
          .describe('DNSBL zones queried at connect (reversed-octet name under the zone; an A record 127.0.0.x means listed). Env OUTPOST_DNSBL_ZONES (comma separated).'),
        dnsblAction: z
          .enum(['reject', 'throttle'])
          .default('reject')
          .describe('What a DNSBL listing does at connect: reject (554 5.7.1) or throttle (421 4.7.0, try later).'),
        authFailure: z
          .object({
            perConnection: z.number().int().positive().default(3).describe('Failed AUTH attempts on one connection before 421 4.7.0 and disconnect.'),
            perIp: z.number().int().positive().default(10).describe('Failed AUTH attempts from one source IP within windowMinutes before AUTH from that IP is blocked for blockMinutes.'),
            perUser: z.number().int().positive().default(5).describe('Failed AUTH attempts for one login within windowMinutes before AUTH as that login is blocked for blockMinutes (a correct password is refused too) from every source that has not logged in as it within familiarSourceDays; familiar sources keep working.'),
            windowMinutes: z.number().int().positive().default(15).describe('Window over which failed AUTH attempts are counted.'),
            blockMinutes: z.number().int().positive().default(15).describe('How long AUTH stays blocked (421 4.7.0) after a per-IP or per-user threshold is reached.'),
            familiarSourceDays: z.number().int().positive().default(30).describe('How long a source (an IPv4 address, an IPv6 /64) stays familiar to a login after a successful login from it: a familiar source is not blocked by the per-user threshold.'),
            lockUser: z.boolean().default(false).describe('Also lock the user (lockAfterAbuse, subject to its autoLock setting, moving it up the timed-unlock ladder) when its per-user threshold is reached. Off by default: anyone who knows a username could get it locked.'),
          })
          .strict()
          .prefault({}),
        reputation: z
          .object({
            halfLifeMinutes: z.number().positive().default(60).describe('Half-life of the internal reputation score of a source IP: each event counts half as much after this time.'),
            throttleScore: z.number().positive().default(10).describe('Score at which connections from an IP get 421 4.7.0 (try later).'),
            rejectScore: z.number().positive().default(30).describe('Score at which connections from an IP get 554 5.7.1.'),
            authFailureWeight: z.number().min(0).default(1).describe('Score added by one failed AUTH from the IP.'),
            refusalWeight: z.number().min(0).default(0.5).describe('Score added by one policy refusal (an unauthenticated relay attempt, a sender or recipient refusal) of a session from the IP without a logged-in user; an authenticated user\'s refusals count against that user only.'),
            abuseWeight: z.number().min(0).default(10).describe('Score added by one abuse verdict (spam, virus, lock) on mail of an IP user from the IP. Verdicts on mail of an authenticated user count against that user, never against the address it shares with others.'),
          })
          .strict()
          .prefault({}),
        limitViolations: z
          .object({
            lockAfter: z.number().int().min(0).default(50).describe('Rate-limit refusals (per minute, per hour, recipients per day) of one user within windowMinutes after which the user is locked (lockAfterAbuse); 0 means never.'),
            windowMinutes: z.number().int().positive().default(60).describe('Window over which limit refusals are counted.'),
          })
          .strict()
          .prefault({}),
        spamVerdicts: z
          .object({
            lockAfter: z.number().int().min(1).default(3).describe('Spam verdicts on mail of one user within windowMinutes after which the user is locked (lockAfterAbuse, subject to its autoLock setting); 1 locks at the first. A virus verdict locks at once.'),
            windowMinutes: z.number().int().positive().default(1440).describe('Window over which spam verdicts are counted.'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({})
      .describe('Per-IP and abuse policy: DNSBL, AUTH failures, internal IP reputation, lock after repeated limit violations or spam verdicts.'),
    defaults: settingOverridesSchema
      .default({})
      .describe('Deployment-wide defaults of the per-user settings, below tenant defaults and user overrides.'),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function envNumber(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a whole number, got "${value}"`);
  return Number(value);
}

/** Turns OUTPOST_* environment variables into a partial config object (not yet validated). */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, Record<string, unknown> | unknown> = {};
  const section = (name: string): Record<string, unknown> => {
    const existing = out[name];
    if (existing && typeof existing === 'object') return existing as Record<string, unknown>;
    const created: Record<string, unknown> = {};
    out[name] = created;
    return created;
  };
  const set = (key: string, apply: (value: string) => void): void => {
    const value = env[key];
    if (value !== undefined && value !== '') apply(value);
  };
  set('OUTPOST_DATA_DIR', (v) => (out.dataDir = v));
  set('OUTPOST_HOSTNAME', (v) => (out.hostname = v));
  set('OUTPOST_LISTEN_ADDRESS', (v) => (out.listenAddress = v));
  set('OUTPOST_OPERATOR_TOKEN', (v) => (out.operatorToken = v));
  set('OUTPOST_SMTP_PORT', (v) => (section('smtp').port = envNumber('OUTPOST_SMTP_PORT', v)));
  set('OUTPOST_SMTPS_PORT', (v) => (section('smtp').smtpsPort = envNumber('OUTPOST_SMTPS_PORT', v)));
  set('OUTPOST_BOUNCE_PORT', (v) => (section('smtp').bouncePort = envNumber('OUTPOST_BOUNCE_PORT', v)));
  set('OUTPOST_TLS_KEY_FILE', (v) => (section('smtp').tlsKeyFile = v));
  set('OUTPOST_TLS_CERT_FILE', (v) => (section('smtp').tlsCertFile = v));
  set('OUTPOST_HTTP_PORT', (v) => (section('http').port = envNumber('OUTPOST_HTTP_PORT', v)));
  set('OUTPOST_METRICS_TOKEN', (v) => (section('http').metricsToken = v));
  set('OUTPOST_RELAY_HOST', (v) => (section('delivery').relayHost = v));
  set('OUTPOST_RETRY_SCHEDULE', (v) => {
    section('delivery').retrySchedule = splitList(v).map((item) => envNumber('OUTPOST_RETRY_SCHEDULE', item));
  });
  set('OUTPOST_CLAMD', (v) => (section('scanning').clamd = v));
  set('OUTPOST_RSPAMD_URL', (v) => (section('scanning').rspamdUrl = v));
  set('OUTPOST_SPAMD', (v) => (section('scanning').spamd = v));
  set('OUTPOST_DNS_SERVERS', (v) => (section('dns').servers = splitList(v)));
  set('OUTPOST_DNSBL_ZONES', (v) => (section('policy').dnsblZones = splitList(v)));
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = result[key];
    result[key] = isPlainObject(current) && isPlainObject(value) ? merge(current, value) : value;
  }
  return result;
}

/**
 * Loads the configuration: the file named by OUTPOST_CONFIG (or ./outpost.config.json when it
 * exists), then the environment. Unknown keys and bad values are errors that name the field.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const explicit = env.OUTPOST_CONFIG;
  const path = explicit ? resolve(cwd, explicit) : resolve(cwd, 'outpost.config.json');
  let fromFile: Record<string, unknown> = {};
  if (explicit && !existsSync(path)) throw new ConfigError(`OUTPOST_CONFIG names ${path}, which does not exist`);
  if (existsSync(path)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error: unknown) {
      throw new ConfigError(`${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!isPlainObject(parsed)) throw new ConfigError(`${path} must hold a JSON object`);
    fromFile = parsed;
  }
  return parseConfig(merge(fromFile, configFromEnv(env)), cwd);
}

export function parseConfig(input: unknown, cwd = process.cwd()): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return { ...result.data, dataDir: resolve(cwd, result.data.dataDir) };
}
