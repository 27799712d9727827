// clamscan is CommonJS without type declarations: the little of it the clamd adapter uses.
declare module 'clamscan' {
  import type { Readable } from 'node:stream';
  export interface ClamScanResult {
    isInfected: boolean | null;
    viruses: string[];
  }
  export interface NodeClamInstance {
    init(options: Record<string, unknown>): Promise<NodeClamInstance>;
    scanStream(stream: Readable): Promise<ClamScanResult>;
  }
  const NodeClam: new () => NodeClamInstance;
  export default NodeClam;
}
