// The SQLite stores against the contract suites the DynamoDB stores pass too.
import { SqliteConfigStore } from '../../../adapters/local/config-store.js';
import { SqliteLockStore } from '../../../adapters/local/lock-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteSuppressionList } from '../../../adapters/local/suppression-store.js';
import { configStoreContract } from '../../core/config-store.contract.js';
import { lockStoreContract } from '../../core/lock-store.contract.js';
import { suppressionListContract } from '../../core/suppression-list.contract.js';

suppressionListContract('SQLite', async (clock) => new SqliteSuppressionList(openDatabase(':memory:'), clock));
lockStoreContract('SQLite', async () => new SqliteLockStore(openDatabase(':memory:')));
configStoreContract('SQLite', async (clock) => new SqliteConfigStore(openDatabase(':memory:'), clock));
