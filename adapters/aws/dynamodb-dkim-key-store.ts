// DKIM keys on DynamoDB (table `config`). A domain's keys share the partition `DKIM#<domain>`:
// one item per selector (`K#<selector>`, the private key sealed by the AsyncSecretBox, KMS on
// AWS) and `#DEFAULT` naming the default selector, so the signer's lookup is one strongly
// consistent Query of a few items. All keys are listed through `byKind` (`DKIM`).
import { queryAll, requireNum, requireStr, str, type Item } from './dynamo-items.js';
import { TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dkimDnsRecord, DkimKeyError, type DkimAlgorithm, type DkimKeyStore, type DkimPublicKey, type DkimSigningKey } from '../../core/dkim/keys.js';
import type { AsyncSecretBox } from '../../core/ports/secret-box.js';
import { systemClock, type Clock } from '../../core/ports.js';

const DEFAULT = '#DEFAULT';
const domainPk = (domain: string): string => `DKIM#${domain}`;
const keySk = (selector: string): string => `K#${selector}`;
const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');

interface StoredKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  publicKey: string;
  sealed: string;
  createdAt: number;
}

function toStored(item: Item): StoredKey {
  const algorithm = str(item, 'algorithm');
  if (algorithm !== 'rsa' && algorithm !== 'ed25519') throw new Error(`DKIM key item has an unknown algorithm "${algorithm}"`);
  return {
    domain: requireStr(item, 'domain', 'DKIM key'),
    selector: requireStr(item, 'selector', 'DKIM key'),
    algorithm,
    publicKey: requireStr(item, 'publicKey', 'DKIM key'),
    sealed: requireStr(item, 'sealed', 'DKIM key'),
    createdAt: requireNum(item, 'createdAt', 'DKIM key'),
  };
}

const toPublic = (key: StoredKey, isDefault: boolean): DkimPublicKey => ({
  domain: key.domain,
  selector: key.selector,
  algorithm: key.algorithm,
  publicKey: key.publicKey,
  isDefault,
  createdAt: key.createdAt,
  dns: dkimDnsRecord(key.domain, key.selector, key.algorithm, key.publicKey),
});

const byAge = (a: StoredKey, b: StoredKey): number => a.createdAt - b.createdAt || (a.selector < b.selector ? -1 : a.selector > b.selector ? 1 : 0);

export interface DynamoDbDkimKeyStoreOptions {
  client: DynamoDBDocumentClient;
  table: string;
  box: AsyncSecretBox;
  clock?: Clock;
}

export class DynamoDbDkimKeyStore implements DkimKeyStore {
  private readonly clock: Clock;

  constructor(private readonly options: DynamoDbDkimKeyStoreOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** The domain's keys, oldest first, and its default selector. */
  private async domain(domain: string): Promise<{ keys: StoredKey[]; defaultSelector: string | undefined }> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': domainPk(domain) },
      ConsistentRead: true,
    });
    return {
      keys: items.filter((item) => str(item, 'sk')?.startsWith('K#')).map(toStored).sort(byAge),
      defaultSelector: str(items.find((item) => str(item, 'sk') === DEFAULT), 'selector'),
    };
  }

  private defaultPut(domain: string, selector: string) {
    return { Put: { TableName: this.options.table, Item: { pk: domainPk(domain), sk: DEFAULT, selector, gsi2pk: 'DKIM', gsi2sk: `${domain}#${DEFAULT}` } } };
  }

  async insert(key: { domain: string; selector: string; algorithm: DkimAlgorithm; publicKey: string; privateKeyPem: string; makeDefault: boolean }): Promise<DkimPublicKey> {
    const stored: StoredKey = {
      domain: key.domain,
      selector: key.selector,
      algorithm: key.algorithm,
      publicKey: key.publicKey,
      sealed: await this.options.box.seal(Buffer.from(key.privateKeyPem, 'utf8')),
      createdAt: this.clock.now(),
    };
    try {
      await this.options.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.options.table,
                Item: { pk: domainPk(key.domain), sk: keySk(key.selector), ...stored, gsi2pk: 'DKIM', gsi2sk: `${key.domain}#K#${pad(stored.createdAt)}#${key.selector}` },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            ...(key.makeDefault ? [this.defaultPut(key.domain, key.selector)] : []),
          ],
        }),
      );
    } catch (error: unknown) {
      if (error instanceof Error && error.name === 'TransactionCanceledException') throw new DkimKeyError(`${key.domain} already has a key with selector "${key.selector}"`);
      throw error;
    }
    return toPublic(stored, key.makeDefault);
  }

  async list(domain?: string): Promise<DkimPublicKey[]> {
    if (domain !== undefined) {
      const { keys, defaultSelector } = await this.domain(domain);
      return keys.map((key) => toPublic(key, key.selector === defaultSelector));
    }
    const items = await queryAll(this.options.client, {
      TableName: this.options.table,
      IndexName: 'byKind',
      KeyConditionExpression: 'gsi2pk = :kind',
      ExpressionAttributeValues: { ':kind': 'DKIM' },
    });
    const defaults = new Map(items.filter((item) => str(item, 'sk') === DEFAULT).map((item) => [str(item, 'pk') ?? '', str(item, 'selector')]));
    return items
      .filter((item) => str(item, 'sk')?.startsWith('K#'))
      .map(toStored)
      .sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : byAge(a, b)))
      .map((key) => toPublic(key, defaults.get(domainPk(key.domain)) === key.selector));
  }

  async setDefault(domain: string, selector: string): Promise<void> {
    try {
      await this.options.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { ConditionCheck: { TableName: this.options.table, Key: { pk: domainPk(domain), sk: keySk(selector) }, ConditionExpression: 'attribute_exists(pk)' } },
            this.defaultPut(domain, selector),
          ],
        }),
      );
    } catch (error: unknown) {
      if (error instanceof Error && error.name === 'TransactionCanceledException') throw new DkimKeyError(`${domain} has no DKIM key with selector "${selector}"; see "outpost dkim list"`);
      throw error;
    }
  }

  async remove(domain: string, selector: string): Promise<void> {
    const { keys, defaultSelector } = await this.domain(domain);
    if (!keys.some((key) => key.selector === selector)) throw new DkimKeyError(`${domain} has no DKIM key with selector "${selector}"; see "outpost dkim list"`);
    const remaining = keys.filter((key) => key.selector !== selector);
    // Keep the domain signing: the newest remaining key takes over.
    const successor = defaultSelector === selector || defaultSelector === undefined ? remaining[remaining.length - 1] : undefined;
    try {
      await this.options.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { Delete: { TableName: this.options.table, Key: { pk: domainPk(domain), sk: keySk(selector) }, ConditionExpression: 'attribute_exists(pk)' } },
            ...(successor ? [this.defaultPut(domain, successor.selector)] : defaultSelector === selector ? [{ Delete: { TableName: this.options.table, Key: { pk: domainPk(domain), sk: DEFAULT } } }] : []),
          ],
        }),
      );
    } catch (error: unknown) {
      if (error instanceof Error && error.name === 'TransactionCanceledException') throw new DkimKeyError(`${domain} has no DKIM key with selector "${selector}"; see "outpost dkim list"`);
      throw error;
    }
  }

  async signingKey(domain: string, selector?: string | null): Promise<DkimSigningKey | undefined> {
    const { keys, defaultSelector } = await this.domain(domain);
    const wanted = selector || defaultSelector;
    const key = keys.find((candidate) => candidate.selector === wanted);
    if (!key) return undefined;
    return { domain: key.domain, selector: key.selector, algorithm: key.algorithm, privateKeyPem: (await this.options.box.open(key.sealed)).toString('utf8') };
  }
}
