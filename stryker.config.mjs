// Mutation run of the security guards (`npm run mutate`; not part of `npm test`): the policy
// checks, the API's bearer authentication and the panel's file serving are mutated one change
// at a time, and each mutant is run against the tests that exercise them (stryker.vitest.config.ts).
// A surviving mutant is a guard that can be broken without any test noticing.
// One file only: `npm run mutate -- --mutate web/serve.ts`.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'stryker.vitest.config.ts', related: false },
  mutate: ['core/policy/*.ts', 'lambdas/api/auth.ts', 'web/serve.ts'],
  coverageAnalysis: 'perTest',
  // The machine is shared: two sandboxes at a time.
  concurrency: 2,
  timeoutMS: 30_000,
  reporters: ['clear-text', 'progress', 'html'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  ignorePatterns: ['reports', 'data', 'test-artifacts', 'web/dist', 'bench', '*.log'],
  thresholds: { high: 85, low: 70, break: null },
};
