// Bounce files nobody will read again. The bounce stage deletes a bounce's file once it is
// handled; what is left behind (a crash between handling and deleting, an unfinished upload)
// would let outsiders fill the disk in time. Housekeeping removes files under `bounces/` older
// than a grace period that no queued bounce job (dead-letter queue included) refers to.
import type { BlobStore, Clock, Logger } from '../ports.js';
import { envelopeSchema } from '../envelope.js';

export const BOUNCE_BLOB_PREFIX = 'bounces/';

export interface StoredBlob {
  key: string;
  /** Last write, in ms since the epoch. */
  modifiedAt: number;
}

/** A blob store that can list what it holds (the filesystem; on S3 a lifecycle rule does this job). */
export interface BlobListing {
  list(prefix: string): Promise<StoredBlob[]>;
}

export interface OrphanBounceDeps {
  blobs: Pick<BlobStore, 'delete'> & BlobListing;
  /** Bodies of every job still in the bounce queue and its dead-letter queue. */
  queuedBounceJobs(): Promise<string[]>;
  clock: Clock;
  logger: Logger;
}

function blobKeyOf(body: string): string | undefined {
  try {
    const parsed = envelopeSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.blobKey : undefined;
  } catch {
    return undefined;
  }
}

/** Removes orphan bounce files older than `olderThanHours`; returns how many. */
export async function purgeOrphanBounces(deps: OrphanBounceDeps, olderThanHours: number): Promise<number> {
  const cutoff = deps.clock.now() - olderThanHours * 3_600_000;
  // Listed before the jobs are read: a bounce queued in between is young, so never a candidate.
  const candidates = (await deps.blobs.list(BOUNCE_BLOB_PREFIX)).filter((blob) => blob.modifiedAt < cutoff);
  if (candidates.length === 0) return 0;
  const referenced = new Set((await deps.queuedBounceJobs()).map(blobKeyOf).filter((key): key is string => key !== undefined));
  let removed = 0;
  for (const blob of candidates) {
    if (referenced.has(blob.key)) continue;
    await deps.blobs.delete(blob.key);
    removed += 1;
  }
  if (removed > 0) deps.logger.info('orphan bounce files removed', { removed, olderThanHours });
  return removed;
}
