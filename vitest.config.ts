import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { SummaryLineReporter } from './test/support/summary-reporter.js';

// Projects: `unit` is everything that runs without outside services
// (unit, transcript, hostile, property and in-process server tests);
// `browser` drives the capture server's web inbox in headless Chromium;
// `interop` needs the real MTAs that test/interop/servers starts.
// Tests import 'smtplib' from source, so they never depend on (or race with)
// a build; test/unit/loading.test.ts checks the built ESM and CJS entry points.
const librarySource = fileURLToPath(new URL('./packages/smtplib/src/index.ts', import.meta.url));
const source = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^smtplib-queue-redis$/, replacement: source('./packages/queue-redis/src/index.ts') },
      { find: /^smtplib-queue\/internal$/, replacement: source('./packages/queue/src/internal.ts') },
      { find: /^smtplib-queue$/, replacement: source('./packages/queue/src/index.ts') },
      { find: /^smtplib-email$/, replacement: source('./packages/email/src/index.ts') },
      { find: /^smtplib$/, replacement: librarySource },
    ],
  },
  test: {
    reporters: ['default', new SummaryLineReporter()],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/{unit,transcript,hostile,property,integration,cli,pool,security,differential,hardening,oauth,queue,dkim,email,capture,otel}/**/*.test.ts'],
          // A hang detector, not a speed check (speed is the bench's job). Tests
          // that start the CLI spawn up to 15 node processes; at load 10 on
          // 2 cores one of them took 30 s (13 s is usual there, 3.4 s quiet).
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Postfix + Dovecot (oauth2 passdb) + oidc-provider; run by .ci/suites/56-oauth.sh as root.
        extends: true,
        test: {
          name: 'oauth-e2e',
          include: ['test/oauth-e2e/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
      {
        // Postfix + the OpenDKIM milter; run by .ci/suites/55-dkim.sh.
        extends: true,
        test: {
          name: 'dkim-e2e',
          include: ['test/dkim-e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        // A 1 GB DKIM message in bounded memory; run by .ci/suites/55-dkim.sh.
        extends: true,
        test: {
          name: 'dkim-slow',
          include: ['test/dkim-slow/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 300_000,
        },
      },
      {
        // A 1 GiB attachment through sendMessage with the RSS bound asserted (.ci/suites/57-email-stream.sh).
        extends: true,
        test: {
          name: 'email-stream',
          include: ['test/email-stream/**/*.test.ts'],
          testTimeout: 600_000,
          // One gigabyte at a time: each file's RSS bound is about what the library
          // keeps while streaming, which depends on when V8 collects dead output;
          // a second 1 GiB run on the other core delays those collections.
          fileParallelism: false,
        },
      },
      {
        // The web inbox in headless Chromium: run by .ci/suites/70-browser.sh
        // (and `npm run test:browser`), not by `npm test`, as it starts a browser.
        extends: true,
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 90_000,
          fileParallelism: false,
        },
      },
      {
        // npm pack, the tarballs installed in a scratch project, type-checked
        // (TS 5 node10, TS 7 nodenext CJS/ESM) and run: .ci/suites/30-packaging.sh.
        extends: true,
        test: {
          name: 'packaging',
          include: ['test/packaging/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
      {
        extends: true,
        test: {
          name: 'first-day',
          include: ['test/first-day/**/*.test.ts'],
          testTimeout: 900_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'interop',
          include: ['test/interop/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
