// The tests a mutation run (`npm run mutate`, stryker.config.json) judges the security guards by:
// fast, in-process tests of the policy checks, bearer authentication and the panel's file serving.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/core/policy/*.test.ts',
      'test/core/header-from-agreement.test.ts',
      'test/lambdas/api/auth.test.ts',
      'test/web/serve.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
  },
});
