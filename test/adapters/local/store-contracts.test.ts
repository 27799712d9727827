// The SQLite stores against the contract suites the DynamoDB stores pass too.
import { SqliteApiKeyStore } from '../../../adapters/local/api-key-store.js';
import { SqliteAuditLog } from '../../../adapters/local/audit-log.js';
import { SqliteBatvKeyStore } from '../../../adapters/local/batv-key-store.js';
import { SqliteConfigStore } from '../../../adapters/local/config-store.js';
import { SqliteDkimKeyStore } from '../../../adapters/local/dkim-key-store.js';
import { SqliteFingerprintStore } from '../../../adapters/local/fingerprint-store.js';
import { SqliteLockStore } from '../../../adapters/local/lock-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { localSecretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { SqliteMessageStats } from '../../../adapters/local/stats-store.js';
import { SqliteQuarantineStore } from '../../../adapters/local/quarantine-store.js';
import { SqliteSuppressionList } from '../../../adapters/local/suppression-store.js';
import { apiKeyStoreContract } from '../../core/api-key-store.contract.js';
import { auditLogContract } from '../../core/audit-log.contract.js';
import { batvKeyStoreContract } from '../../core/batv-key-store.contract.js';
import { configStoreContract } from '../../core/config-store.contract.js';
import { dkimKeyStoreContract } from '../../core/dkim-key-store.contract.js';
import { fingerprintStoreContract } from '../../core/fingerprint-store.contract.js';
import { lockStoreContract } from '../../core/lock-store.contract.js';
import { messageStatsContract } from '../../core/message-stats.contract.js';
import { quarantineStoreContract } from '../../core/quarantine-store.contract.js';
import { suppressionListContract } from '../../core/suppression-list.contract.js';

suppressionListContract('SQLite', async (clock) => new SqliteSuppressionList(openDatabase(':memory:'), clock));
lockStoreContract('SQLite', async () => new SqliteLockStore(openDatabase(':memory:')));
configStoreContract('SQLite', async (clock) => new SqliteConfigStore(openDatabase(':memory:'), clock));
apiKeyStoreContract('SQLite', async () => new SqliteApiKeyStore(openDatabase(':memory:')));
dkimKeyStoreContract('SQLite', async (clock) => new SqliteDkimKeyStore(openDatabase(':memory:'), localSecretBoxFromKey(Buffer.alloc(32, 7)), clock));
batvKeyStoreContract('SQLite', async () => new SqliteBatvKeyStore(openDatabase(':memory:'), localSecretBoxFromKey(Buffer.alloc(32, 5))));
quarantineStoreContract('SQLite', async () => new SqliteQuarantineStore(openDatabase(':memory:')));
fingerprintStoreContract('SQLite', async () => new SqliteFingerprintStore(openDatabase(':memory:')));
messageStatsContract('SQLite', async () => {
  const db = openDatabase(':memory:');
  return { log: new SqliteMessageLog(db), stats: new SqliteMessageStats(db) };
});
auditLogContract('SQLite', async (clock) => new SqliteAuditLog(openDatabase(':memory:'), clock));
