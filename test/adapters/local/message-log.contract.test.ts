import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { messageLogContract } from '../../core/message-log.contract.js';

messageLogContract('SQLite', async (clock) => {
  const db = openDatabase(':memory:');
  return {
    log: new SqliteMessageLog(db, clock),
    close: () => {
      db.close();
    },
  };
});
