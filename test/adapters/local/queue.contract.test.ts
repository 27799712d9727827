import { SqliteQueue } from '../../../adapters/local/queue.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { queueContract } from '../../core/queue.contract.js';

queueContract('SQLite (manual clock)', async ({ maxReceives }) => {
  let now = 1_000_000;
  const db = openDatabase(':memory:');
  return {
    queue: new SqliteQueue(db, { maxReceives, clock: { now: () => now } }),
    name: 'q',
    advance: async (ms) => {
      now += ms;
    },
    close: () => {
      db.close();
    },
  };
});
