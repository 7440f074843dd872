#!/usr/bin/env node
// `smtplib-sendmail`: the sendmail interface on its own, for programs that
// run /usr/sbin/sendmail (link or point them here).
import { runSendmail } from './commands/sendmail.js';

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});
process.exitCode = await runSendmail(process.argv.slice(2));
