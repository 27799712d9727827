// SpamEngine on rspamd's HTTP protocol: POST /checkv2 with the message as body and the session
// facts as headers (User, IP, Helo, From, one Rcpt per recipient, Queue-Id), so that rspamd
// knows the sender is an authenticated outbound user and applies its outbound settings.
import { request } from 'node:http';
import { request as requestTls } from 'node:https';
import { z } from 'zod';
import type { Symbol } from '../../core/checks/check.js';
import { withTimeout, type SpamCheckMeta, type SpamCheckResult, type SpamEngine } from '../../core/scan/engines.js';

const replySchema = z.object({
  score: z.number(),
  required_score: z.number().optional(),
  action: z.string().optional(),
  symbols: z
    .record(
      z.string(),
      z.object({ name: z.string(), score: z.number().optional(), options: z.array(z.string()).optional(), description: z.string().optional() }),
    )
    .default({}),
});

/**
 * A session fact as an HTTP header value: control characters dropped, and UTF-8 (a SMTPUTF8
 * address, a HELO the client chose) sent as its bytes. Node refuses characters above U+00FF in a
 * header, which would fail every scan of the message and defer it until it is dead-lettered.
 */
function headerText(value: string): string {
  return Buffer.from(value.replace(/[\x00-\x1f\x7f]/g, ''), 'utf8').toString('latin1');
}

export class RspamdEngine implements SpamEngine {
  readonly name = 'rspamd';
  private readonly url: URL;

  constructor(
    baseUrl: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.url = new URL('/checkv2', baseUrl);
  }

  async check(raw: Buffer, meta: SpamCheckMeta): Promise<SpamCheckResult> {
    const headers: Record<string, string | string[]> = {
      'Content-Length': String(raw.length),
      IP: headerText(meta.clientIp),
      Helo: headerText(meta.helo),
      From: headerText(meta.mailFrom),
      'Queue-Id': headerText(meta.queueId),
    };
    if (meta.user) headers.User = headerText(meta.user);
    // Node sends an array value as one header line per item: rspamd wants one Rcpt per recipient.
    if (meta.rcptTo.length > 0) headers.Rcpt = meta.rcptTo.map(headerText);
    const body = await withTimeout('rspamd', this.timeoutMs, this.post(raw, headers));
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new Error(`rspamd at ${this.url.origin} answered with something that is not JSON`);
    }
    const parsed = replySchema.safeParse(json);
    if (!parsed.success) throw new Error(`rspamd at ${this.url.origin} answered without a score: ${parsed.error.issues[0]?.message ?? ''}`);
    const symbols: Symbol[] = Object.values(parsed.data.symbols).map((item) => ({
      name: item.name,
      score: item.score ?? 0,
      ...(item.options && item.options.length > 0 ? { evidence: { options: item.options } } : {}),
    }));
    const result: SpamCheckResult = { score: parsed.data.score, symbols };
    if (parsed.data.action) result.action = parsed.data.action;
    return result;
  }

  private post(raw: Buffer, headers: Record<string, string | string[]>): Promise<string> {
    const send = this.url.protocol === 'https:' ? requestTls : request;
    return new Promise((resolve, reject) => {
      const req = send(this.url, { method: 'POST', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(new Error(`rspamd at ${this.url.origin} answered HTTP ${res.statusCode ?? '?'}: ${text.slice(0, 200)}`));
          else resolve(text);
        });
      });
      req.on('error', (error: unknown) =>
        reject(new Error(`rspamd at ${this.url.origin} is unreachable: ${error instanceof Error ? error.message : String(error)}`)),
      );
      req.end(raw);
    });
  }
}
