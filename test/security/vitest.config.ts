// Runs the security suite on its own until the root vitest.config.ts lists
// test/security in the `unit` project's include:
//   npx vitest run --config test/security/vitest.config.ts
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const librarySource = fileURLToPath(new URL('../../packages/smtplib/src/index.ts', import.meta.url));

export default defineConfig({
  resolve: { alias: { smtplib: librarySource } },
  test: {
    include: ['test/security/**/*.test.ts'],
    root: fileURLToPath(new URL('../..', import.meta.url)),
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
