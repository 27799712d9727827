// Concurrent session caps of one SMTP listener: at most maxPerAddress sessions from one client
// address (as Postfix's smtpd_client_connection_count_limit, 50 by default), and at most
// maxTotal in all. Addresses inside the exempt CIDR ranges (a webmail host, a customer's mail
// server registered as an IP user) are capped only by the total. A session over a cap is
// greeted with 421 4.7.0 and closed: the client tries again later, its other sessions go on.
import { cidrContains } from '../core/identity.js';
import type { CheckResult } from '../core/checks/check.js';

export interface SessionCapSettings {
  /** Sessions one client address may hold at once. */
  maxPerAddress: number;
  /** Sessions the listener holds at once. */
  maxTotal: number;
  /** CIDR ranges (or single addresses) that maxPerAddress does not apply to. */
  exemptions: readonly string[];
}

export const SESSION_CAP_SYMBOLS = {
  PER_ADDRESS: 'SESSIONS_PER_ADDRESS_LIMIT',
  TOTAL: 'SESSIONS_TOTAL_LIMIT',
} as const;

export class SessionCaps {
  /** Session id → the address it was admitted for; only admitted sessions are released. */
  private readonly admitted = new Map<string, string>();
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly settings: SessionCapSettings) {}

  /** Admits the session or returns the 421 refusal; an admitted session must be released when it closes. */
  admit(sessionId: string, address: string): CheckResult | undefined {
    if (this.admitted.has(sessionId)) return undefined;
    const { maxTotal, maxPerAddress } = this.settings;
    if (this.admitted.size >= maxTotal) {
      return {
        action: 'tempfail',
        code: 421,
        enhancedCode: '4.7.0',
        text: 'Too many connections to this server; try again later',
        symbols: [{ name: SESSION_CAP_SYMBOLS.TOTAL, evidence: { sessions: this.admitted.size, limit: maxTotal } }],
      };
    }
    const current = this.perAddress.get(address) ?? 0;
    if (current >= maxPerAddress && !this.isExempt(address)) {
      return {
        action: 'tempfail',
        code: 421,
        enhancedCode: '4.7.0',
        text: `Too many concurrent connections from ${address} (limit ${maxPerAddress}); try again later`,
        symbols: [{ name: SESSION_CAP_SYMBOLS.PER_ADDRESS, evidence: { clientIp: address, sessions: current, limit: maxPerAddress } }],
      };
    }
    this.admitted.set(sessionId, address);
    this.perAddress.set(address, current + 1);
    return undefined;
  }

  release(sessionId: string): void {
    const address = this.admitted.get(sessionId);
    if (address === undefined) return;
    this.admitted.delete(sessionId);
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, left);
  }

  /** Sessions admitted now (from `address`, or in all). */
  count(address?: string): number {
    return address === undefined ? this.admitted.size : (this.perAddress.get(address) ?? 0);
  }

  private isExempt(address: string): boolean {
    return this.settings.exemptions.some((cidr) => {
      try {
        return cidrContains(cidr, address);
      } catch {
        return false;
      }
    });
  }
}
