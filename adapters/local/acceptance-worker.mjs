// Entry of the acceptance writer thread: runs the TypeScript through the module hooks of
// bin/register-typescript.mjs, as bin/pipeline-worker.mjs does (a worker thread does not inherit
// the hooks of the thread that started it).
import '../../bin/register-typescript.mjs';

await import('./acceptance-worker.ts');
