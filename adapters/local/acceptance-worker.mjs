// Entry of the acceptance writer thread: runs the TypeScript through tsx, as bin/pipeline-worker.mjs
// does (a worker thread does not inherit the loader of the thread that started it).
import { register } from 'tsx/esm/api';

register();
await import('./acceptance-worker.ts');
