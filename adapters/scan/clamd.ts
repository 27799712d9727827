// VirusScanner on ClamAV's clamd through the clamscan package, streaming the message (INSTREAM).
// Fails closed: only `isInfected === false` is clean; clamd down, an error reply or a timeout
// throws, so the message is retried and never delivered unscanned. With AlertExceedsMax, clamd
// reports archives over its limits as Heuristics.Limits.Exceeded.*, which counts as infected.
import { Readable } from 'node:stream';
import { withTimeout, type VirusScanner, type VirusScanResult } from '../../core/scan/engines.js';

// A static import (typed in clamscan.d.ts), so that a Lambda bundle contains clamscan.
import NodeClam, { type ClamScanResult, type NodeClamInstance } from 'clamscan';

/** Where clamd listens: `host:port` or a Unix socket path. */
export type ClamdAddress = { host: string; port: number } | { socket: string };

export function parseClamdAddress(value: string): ClamdAddress {
  const tcp = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (tcp?.[1] && tcp[2]) return { host: tcp[1].replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
  if (value.startsWith('/')) return { socket: value };
  throw new Error(`clamd address "${value}" is neither host:port nor an absolute socket path`);
}

export class ClamdScanner implements VirusScanner {
  readonly name = 'clamd';
  private client: Promise<NodeClamInstance> | undefined;

  constructor(
    private readonly address: ClamdAddress,
    private readonly timeoutMs = 30_000,
  ) {}

  private connect(): Promise<NodeClamInstance> {
    if (!this.client) {
      const clamdscan =
        'socket' in this.address
          ? { socket: this.address.socket }
          : { host: this.address.host, port: this.address.port };
      this.client = new NodeClam()
        .init({
          preference: 'clamdscan',
          clamscan: { active: false },
          // bypassTest: no PING at init, so a clamd that is down at start does not poison the client;
          // each scan connects anew and fails on its own.
          clamdscan: { ...clamdscan, timeout: this.timeoutMs, localFallback: false, bypassTest: true, active: true },
        })
        .catch((error: unknown) => {
          this.client = undefined;
          throw error;
        });
    }
    return this.client;
  }

  async scan(raw: Buffer): Promise<VirusScanResult> {
    const where = 'socket' in this.address ? this.address.socket : `${this.address.host}:${this.address.port}`;
    let result: ClamScanResult;
    try {
      const client = await this.connect();
      result = await withTimeout('clamd', this.timeoutMs, client.scanStream(Readable.from([raw])));
    } catch (error: unknown) {
      throw new Error(`clamd at ${where} could not scan the message: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (result.isInfected === false) return { infected: false, signatures: [] };
    if (result.isInfected === true) {
      const signatures = Array.isArray(result.viruses) ? result.viruses.filter((name) => typeof name === 'string') : [];
      return { infected: true, signatures: signatures.length > 0 ? signatures : ['UNKNOWN'] };
    }
    // null: clamd answered something that is neither OK nor FOUND (an error or a timeout).
    throw new Error(`clamd at ${where} gave no clean/infected answer; the message will be scanned again`);
  }
}
