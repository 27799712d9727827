#!/usr/bin/env node
// The `outpost` command: runs the TypeScript CLI through module hooks that compile each file as it
// is imported (bin/register-typescript.mjs), so there is no build step.
import './register-typescript.mjs';

await import('./cli.ts');
