// SpamEngine on SpamAssassin's spamd protocol (SPAMC/1.5 over TCP, REPORT command). spamd sees
// only the message, so the session facts travel in a Received header we prepend, written as our
// own MTA would (ESMTPSA: authenticated submission), which SpamAssassin's relay rules read.
import { connect } from 'node:net';
import type { Symbol } from '../../core/checks/check.js';
import { withTimeout, type SpamCheckMeta, type SpamCheckResult, type SpamEngine } from '../../core/scan/engines.js';

export class SpamdEngine implements SpamEngine {
  readonly name = 'spamd';

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs = 30_000,
    private readonly receivedBy = 'outpost',
  ) {}

  static fromAddress(address: string, timeoutMs?: number): SpamdEngine {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
    if (!match?.[1] || !match[2]) throw new Error(`spamd address "${address}" is not host:port`);
    return new SpamdEngine(match[1].replace(/^\[|\]$/g, ''), Number(match[2]), timeoutMs);
  }

  async check(raw: Buffer, meta: SpamCheckMeta): Promise<SpamCheckResult> {
    const message = Buffer.concat([Buffer.from(this.receivedHeader(meta)), raw]);
    const reply = await withTimeout('spamd', this.timeoutMs, this.exchange(message));
    return parseReport(reply, `${this.host}:${this.port}`);
  }

  private receivedHeader(meta: SpamCheckMeta): string {
    const clean = (value: string): string => value.replace(/[^\x21-\x7e]/g, '');
    const helo = clean(meta.helo) || 'unknown';
    const auth = meta.user ? ` (authenticated as ${clean(meta.user)})` : '';
    return (
      `Received: from ${helo} (${helo} [${clean(meta.clientIp)}])${auth}\r\n` +
      `\tby ${this.receivedBy} with ESMTPSA id ${clean(meta.queueId)}\r\n` +
      `\tfor <${clean(meta.rcptTo[0] ?? '')}>; ${new Date().toUTCString().replace('GMT', '+0000')}\r\n`
    );
  }

  private exchange(message: Buffer): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port });
      const chunks: Buffer[] = [];
      socket.on('connect', () => {
        socket.write(`REPORT SPAMC/1.5\r\nContent-length: ${message.length}\r\n\r\n`);
        socket.end(message);
      });
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', (error: unknown) =>
        reject(new Error(`spamd at ${this.host}:${this.port} is unreachable: ${error instanceof Error ? error.message : String(error)}`)),
      );
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  }
}

/**
 * Parses a REPORT reply: `SPAMD/1.1 0 EX_OK`, headers with `Spam: True ; 7.9 / 5.0`, a blank
 * line, then the report table whose lines read ` 2.5 RULE_NAME   Description`.
 */
export function parseReport(reply: string, where: string): SpamCheckResult {
  const status = /^SPAMD\/\d\.\d+ (\d+) (\S+)/.exec(reply);
  if (!status) throw new Error(`spamd at ${where} answered something that is not the spamd protocol`);
  if (status[1] !== '0') throw new Error(`spamd at ${where} failed: ${status[1]} ${status[2] ?? ''}`);
  const split = reply.indexOf('\r\n\r\n');
  const head = split >= 0 ? reply.slice(0, split) : reply;
  const body = split >= 0 ? reply.slice(split + 4) : '';
  const spam = /^Spam: (True|False|Yes|No) ; (-?[\d.]+) \/ (-?[\d.]+)/im.exec(head);
  if (!spam?.[2]) throw new Error(`spamd at ${where} answered without a score`);
  const symbols: Symbol[] = [];
  for (const line of body.split(/\r?\n/)) {
    const rule = /^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]{2,})\s+(.*)$/.exec(line);
    if (rule?.[1] && rule[2]) symbols.push({ name: rule[2], score: Number(rule[1]), evidence: (rule[3] ?? '').trim() });
  }
  return { score: Number(spam[2]), symbols, action: /^(True|Yes)$/i.test(spam[1] ?? '') ? 'spam' : 'ham' };
}
