#!/usr/bin/env node
// The `smtplib` command as npm links it. This file is committed (dist/ is
// not), so `npm ci` can link it before anything is built; it runs the build
// of the CLI, or says how to make one.
import { existsSync } from 'node:fs';

const target = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(target)) {
  process.stderr.write('smtplib: the command is not built yet: run `npm run build` (or `npm start`) at the root of the repository\n');
  process.exit(70);
}
await import(target.href);
