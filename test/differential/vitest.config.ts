// Runs only the differential tests, until the root vitest.config.ts includes
// test/differential in the `unit` project:
//   npx vitest run --config test/differential/vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/differential/**/*.test.ts'],
    root: new URL('../..', import.meta.url).pathname,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
