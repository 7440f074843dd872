// `npm start`: the example program from Python's smtplib documentation,
// ported to TypeScript and run without a person at the keyboard, against the
// debugging server started on a free loopback port.
//
// The original prompts for From, To and the message; here the answers are
// fixed. As in the original, the From and To headers are put in front of the
// text by hand: sendmail() sends the message as given.
import { startDebugServer, formatMessage } from './serve.js';
import { SMTP } from 'smtplib';

const fromaddr = 'alice@example.test';
const toaddrs = 'bob@example.test carol@example.test'.split(/\s+/);
const lines = [
  'Hello Bob and Carol,',
  '',
  'this message went through smtplib to a debugging server on 127.0.0.1.',
  '-- ',
  'Alice',
];

async function main(): Promise<number> {
  const server = await startDebugServer({ port: 0 });
  try {
    console.log(`Debugging server listening on ${server.host}:${server.port}`);
    console.log(`From: ${fromaddr}`);
    console.log(`To: ${toaddrs.join(' ')}`);
    console.log('Enter message, end with ^D (Unix) or ^Z (Windows):');
    for (const line of lines) console.log(line);

    // Add the From: and To: headers at the start!
    let msg = `From: ${fromaddr}\r\nTo: ${toaddrs.join(', ')}\r\n\r\n`;
    for (const line of lines) msg += line + '\r\n';
    console.log(`Message length is ${msg.length}`);

    // server = smtplib.SMTP('localhost'); server.set_debuglevel(1)
    const hasSetDebugLevel = typeof (SMTP as unknown as { prototype?: { setDebugLevel?: unknown } }).prototype?.setDebugLevel === 'function';
    const smtp = await SMTP.connect({
      host: server.host,
      port: server.port,
      ...(hasSetDebugLevel ? {} : { debugLevel: 1 as const }),
      debugOutput: (line: string) => process.stderr.write(line.endsWith('\n') ? line : line + '\n'),
    });
    if (hasSetDebugLevel) smtp.setDebugLevel!(1);
    const refused = await smtp.sendmail(fromaddr, toaddrs, msg);
    await smtp.quit();

    const refusedList = refused instanceof Map ? [...refused.keys()] : Object.keys(refused);
    if (refusedList.length > 0) console.log(`Refused: ${refusedList.join(', ')}`);

    const received = await server.waitForMessage(1, 5_000);
    console.log('\nThe server received:');
    console.log(formatMessage(received, { raw: true }));
    printInboxHint();
    return refusedList.length === 0 ? 0 : 1;
  } finally {
    await server.close();
  }
}

/** The demo's last lines: how to watch mail in the web inbox. */
function printInboxHint(): void {
  console.log('\nTo test your own app\'s mail in a web inbox, run:');
  console.log('  npx smtplib serve');
  console.log('then send to 127.0.0.1:1025 and open');
  console.log('  http://127.0.0.1:8025');
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    console.error(`demo failed: ${err.stack ?? err.message}`);
    process.exitCode = 1;
  },
);
