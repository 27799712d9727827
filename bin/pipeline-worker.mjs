// Entry of the pipeline's worker thread: like bin/outpost.js, runs the TypeScript through tsx
// (a worker thread does not inherit the loader of the thread that started it).
import { register } from 'tsx/esm/api';

register();
await import('./pipeline-worker.ts');
