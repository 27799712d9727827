// Entry of the pipeline's worker thread: like bin/outpost.js, runs the TypeScript through module
// hooks that compile it as it is imported (a worker thread does not inherit the hooks of the
// thread that started it).
import './register-typescript.mjs';

await import('./pipeline-worker.ts');
