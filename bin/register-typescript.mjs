// Imported first by every entry that runs Outpost's TypeScript without a build step: the `outpost`
// command (bin/outpost.js) and the entries of its worker threads (a worker thread does not inherit
// the module hooks of the thread that started it). See bin/typescript-hooks.mjs for why these
// hooks and not tsx's.
import { register } from 'node:module';

register('./typescript-hooks.mjs', import.meta.url);
// Stack traces in the logs point at the TypeScript, as they did under tsx.
process.setSourceMapsEnabled(true);
