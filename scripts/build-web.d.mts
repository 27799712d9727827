// Types of scripts/build-web.mjs for the TypeScript callers (web/serve.ts, tests, bin/).
export declare const webDir: string;
export declare const defaultOutDir: string;
export declare function buildWeb(options?: { outDir?: string; minify?: boolean }): Promise<{ outDir: string; ms: number }>;
