// The SQLite stores against the contract suites the DynamoDB stores pass too.
import { SqliteLockStore } from '../../../adapters/local/lock-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteSuppressionList } from '../../../adapters/local/suppression-store.js';
import { lockStoreContract } from '../../core/lock-store.contract.js';
import { suppressionListContract } from '../../core/suppression-list.contract.js';

suppressionListContract('SQLite', async (clock) => new SqliteSuppressionList(openDatabase(':memory:'), clock));
lockStoreContract('SQLite', async () => new SqliteLockStore(openDatabase(':memory:')));
