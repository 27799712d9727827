// Runs as its own process with its own SQLite connection: tries `attempts` reservations against
// one limit and prints how many were admitted. Used to prove atomicity across connections.
import { SqliteCounterStore } from '../../adapters/local/counter-store.js';
import { openDatabase } from '../../adapters/local/sqlite.js';

const [path = '', attempts = '0', limit = '0', now = '0'] = process.argv.slice(2);
const db = openDatabase(path);
const store = new SqliteCounterStore(db, { now: () => Number(now) });
let admitted = 0;
for (let i = 0; i < Number(attempts); i++) {
  const outcome = await store.reserve({ limits: [{ key: 'shared', units: 1, limit: Number(limit), windowMs: 60_000 }] });
  if (outcome.ok) admitted++;
}
db.close();
process.stdout.write(String(admitted));
