// FingerprintStore on DynamoDB (table `fingerprints`). Blocked hashes are one item each
// (`H#<sha256>`, looked up in one BatchGetItem per message), listed through `byKind`. Fuzzy
// fingerprints are stored under each of their 8 one-byte bands (`SB#<band>#<value>` for learned
// spam, `BB#<band>#<value>` for bulk sightings, the fingerprint in the sort key): a near-duplicate
// shares at least one band with what it resembles (within 7 differing bits), so a lookup queries
// the 8 band partitions in parallel and measures the Hamming distance of what they hold. The 2,048
// band partitions spread the writes of a busy sender evenly.
import { BatchWriteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { fingerprintBands, hammingDistance, type BlockedHash, type FingerprintStore, type FuzzyMatch, type HashSource } from '../../core/scan/fingerprint.js';
import { backoff, deleteAll, getMany, itemKey, queryAll, requireNum, requireStr, scanAll, str, type Item } from './dynamo-items.js';

const ONE = '#';
const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');
const hashPk = (sha256: string): string => `H#${sha256.toLowerCase()}`;

function toBlocked(item: Item): BlockedHash {
  const source = str(item, 'source');
  const known: HashSource[] = ['operator', 'virus', 'spam'];
  const found = known.find((candidate) => candidate === source);
  if (!found) throw new Error(`blocked hash item has an unknown source "${source}"`);
  return { sha256: requireStr(item, 'sha256', 'blocked hash'), source: found, reason: str(item, 'reason') ?? '', addedAt: requireNum(item, 'addedAt', 'blocked hash') };
}

export class DynamoDbFingerprintStore implements FingerprintStore {
  constructor(private readonly options: { client: DynamoDBDocumentClient; table: string }) {}

  async blockHash(entry: BlockedHash): Promise<void> {
    const sha256 = entry.sha256.toLowerCase();
    try {
      await this.options.client.send(
        new PutCommand({
          TableName: this.options.table,
          Item: { pk: hashPk(sha256), sk: ONE, ...entry, sha256, gsi2pk: 'HASHES', gsi2sk: `${pad(entry.addedAt)}#${sha256}` },
          // An operator entry is never downgraded to a learned one.
          ...(entry.source === 'operator'
            ? {}
            : { ConditionExpression: 'attribute_not_exists(pk) OR #source <> :operator', ExpressionAttributeNames: { '#source': 'source' }, ExpressionAttributeValues: { ':operator': 'operator' } }),
        }),
      );
    } catch (error: unknown) {
      if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
    }
  }

  async unblockHash(sha256: string): Promise<void> {
    await deleteAll(this.options.client, this.options.table, [{ pk: hashPk(sha256), sk: ONE }]);
  }

  async findBlockedHashes(sha256s: string[]): Promise<BlockedHash[]> {
    const unique = [...new Set(sha256s.map((hash) => hash.toLowerCase()))];
    if (unique.length === 0) return [];
    const found = await getMany(this.options.client, this.options.table, unique.map((hash) => ({ pk: hashPk(hash), sk: ONE })));
    return unique.flatMap((hash) => {
      const item = found.get(itemKey(hashPk(hash), ONE));
      return item ? [toBlocked(item)] : [];
    });
  }

  async listBlockedHashes(): Promise<BlockedHash[]> {
    const items = await queryAll(this.options.client, { TableName: this.options.table, IndexName: 'byKind', KeyConditionExpression: 'gsi2pk = :kind', ExpressionAttributeValues: { ':kind': 'HASHES' } });
    return items.map(toBlocked);
  }

  async addSpamFingerprint(fingerprint: string, at: number): Promise<void> {
    await this.putBands('SB', fingerprint, fingerprint, { at, fingerprint });
  }

  async nearestSpamFingerprint(fingerprint: string, maxDistance: number): Promise<FuzzyMatch | undefined> {
    let best: FuzzyMatch | undefined;
    for (const item of await this.bandItems('SB', fingerprint)) {
      const candidate = str(item, 'fingerprint');
      if (candidate === undefined) continue;
      const distance = hammingDistance(fingerprint, candidate);
      if (distance <= maxDistance && (!best || distance < best.distance)) best = { fingerprint: candidate, distance };
    }
    return best;
  }

  async recordSighting(fingerprint: string, identity: string, at: number): Promise<void> {
    await this.putBands('BB', fingerprint, `${fingerprint}#${identity}`, { at, fingerprint, identity });
  }

  async countSenders(fingerprint: string, maxDistance: number, since: number): Promise<number> {
    const identities = new Set<string>();
    for (const item of await this.bandItems('BB', fingerprint, since)) {
      const candidate = str(item, 'fingerprint');
      const identity = str(item, 'identity');
      if (candidate !== undefined && identity !== undefined && hammingDistance(fingerprint, candidate) <= maxDistance) identities.add(identity);
    }
    return identities.size;
  }

  async purgeOlderThan(cutoff: { learned: number; sightings: number }): Promise<void> {
    const old = await scanAll(this.options.client, {
      TableName: this.options.table,
      FilterExpression: '(begins_with(pk, :sightings) AND #at < :sightingCutoff) OR (begins_with(pk, :spam) AND #at < :learned) OR (begins_with(pk, :hash) AND #source <> :operator AND addedAt < :learned)',
      ExpressionAttributeNames: { '#at': 'at', '#source': 'source' },
      ExpressionAttributeValues: { ':sightings': 'BB#', ':sightingCutoff': cutoff.sightings, ':spam': 'SB#', ':hash': 'H#', ':operator': 'operator', ':learned': cutoff.learned },
      ProjectionExpression: 'pk, sk',
    });
    await deleteAll(this.options.client, this.options.table, old.map((item) => ({ pk: requireStr(item, 'pk', 'fingerprint item'), sk: requireStr(item, 'sk', 'fingerprint item') })));
  }

  /** Writes the item under each of the fingerprint's 8 bands (a re-sighting overwrites its time). */
  private async putBands(prefix: 'SB' | 'BB', fingerprint: string, sk: string, fields: Item): Promise<void> {
    let requests: Array<{ PutRequest: { Item: Item } }> = fingerprintBands(fingerprint).map((value, band) => ({ PutRequest: { Item: { pk: `${prefix}#${band}#${value}`, sk, ...fields } } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      const result = await this.options.client.send(new BatchWriteCommand({ RequestItems: { [this.options.table]: requests } }));
      const left = result.UnprocessedItems?.[this.options.table] ?? [];
      requests = left.flatMap((request) => (request.PutRequest?.Item ? [{ PutRequest: { Item: request.PutRequest.Item } }] : []));
      if (requests.length > 0) await backoff(attempt);
    }
  }

  /** Everything stored under any band of `fingerprint` (since a time, for sightings). */
  private async bandItems(prefix: 'SB' | 'BB', fingerprint: string, since?: number): Promise<Item[]> {
    const pages = await Promise.all(
      fingerprintBands(fingerprint).map((value, band) =>
        queryAll(this.options.client, {
          TableName: this.options.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `${prefix}#${band}#${value}`, ...(since === undefined ? {} : { ':since': since }) },
          ...(since === undefined ? {} : { FilterExpression: '#at >= :since', ExpressionAttributeNames: { '#at': 'at' } }),
        }),
      ),
    );
    return pages.flat();
  }
}
