// One measurement of bench/suites/email.js, in its own process so its RSS is its own:
//   node bench/lib/email-cell.js <ours|nodemailer> small <ms>           → compose + serialize a 1 KB text+HTML message, msgs/s
//   node bench/lib/email-cell.js <ours|nodemailer|bare> attach <file> <passes>
//       → a message with that file attached, streamed out `passes` times. The first pass measures memory:
//         process.memoryUsage() before it and after every chunk read and every 5 ms, so the peak is the peak;
//         the later passes are timed (wall clock and the process's CPU time).
//         `bare` imports nothing and composes nothing: the RSS of a node process that only runs this harness
//         (initialRssMB: before the harness's two steps below, i.e. node with nothing imported).
//       Before the "before" sample, every attach cell (bare too) does the same two things, so that one-time
//       costs of a node process land in "before" whichever code happens to trigger them first (see warmCompiler
//       and settleYoungGeneration); the RSS each added is reported (warmRssMB, settleRssMB).
// Prints `RESULT {json}`. Only the library measured is loaded, so the process's RSS is its own.
const MiB = 1048576;
/** The RSS of this process before it has done anything: node with nothing imported (the bare cell's figure). */
const initialRssMB = process.memoryUsage.rss() / MiB;
const [lib, kind, arg, passesArg] = process.argv.slice(2);

/**
 * A loop that allocates nothing, hot enough for V8's optimizing compiler. The first optimizing compile of a
 * process pages in the compiler's own machine code from the node binary (file-backed RSS: 3.9 MB on Node 20,
 * /proc/self/status RssFile before and after such a loop). MailComposer's import runs enough code to trigger it
 * before its "before" sample, smtplib-email's during the message; done here first, it is in neither's growth.
 * Returns the RSS it added.
 */
function warmCompiler() {
  const rss = process.memoryUsage.rss();
  const hot = (x) => { let s = 0; for (let i = 0; i < 1000; i++) s += (x * i) ^ (i >> 3); return s; };
  let t = 0;
  for (let i = 0; i < 20000; i++) t += hot(i);
  if (t === 0.5) console.log(t); // keeps the loop from being dead code
  return (process.memoryUsage.rss() - rss) / MiB;
}

/**
 * 16 MB of strings that die at once, allocated by the harness after the import (no library code runs).
 * Two one-time costs of a young node process come with the first megabytes any code allocates: V8 grows
 * the young generation (semi-spaces 1 MB -> 2 MB) once more than its capacity has survived scavenges since
 * the process started (the first scavenges after an import promote the import's objects, which is what trips
 * it), and the grown semi-spaces' pages are then touched. MailComposer's import allocates enough to pay both
 * before its "before" sample; smtplib-email's import (one bundle) does not, so both used to be counted as
 * its message's memory (heapTotal +2.5-3 MB). 16 MB is four rounds of the two 2 MB semi-spaces. Bare node
 * pays it too; the RSS it added is reported for every cell.
 */
async function settleYoungGeneration() {
  const rss = process.memoryUsage.rss();
  const source = Buffer.alloc(16384, 97);
  let n = 0;
  for (let i = 0; i < 1024; i++) n += source.toString('latin1').length;
  await new Promise((resolve) => setTimeout(resolve, 20));
  return { settleRssMB: (process.memoryUsage.rss() - rss) / MiB, settledBytes: n };
}

const warmRssMB = kind === 'attach' ? warmCompiler() : 0;
const { EmailMessage } = lib === 'ours' ? await import('smtplib-email') : {};
const MailComposer = lib === 'nodemailer' ? (await import('nodemailer/lib/mail-composer/index.js')).default : undefined;
const TEXT = 'Hello Bob,\n\nthe quarterly figures are attached. Revenue is up 4 %, costs are flat.\n'.repeat(4);
const HTML = `<html><body><p>${TEXT.replace(/\n/g, '<br>')}</p></body></html>`;

function oursSmall(i) {
  const msg = new EmailMessage();
  msg.set('From', 'Alice <alice@example.com>');
  msg.set('To', 'Bob <bob@example.com>');
  msg.set('Subject', `Quarterly figures ${i}`);
  msg.set('Message-ID', `<${i}.bench@example.com>`);
  msg.set('Date', 'Sat, 05 Dec 2026 21:52:26 +0000');
  msg.setContent(TEXT);
  msg.addAlternative(HTML, { subtype: 'html' });
  return msg.asBytes();
}

function nodemailerSmall(i) {
  return new MailComposer({
    from: 'Alice <alice@example.com>', to: 'Bob <bob@example.com>', subject: `Quarterly figures ${i}`,
    messageId: `<${i}.bench@example.com>`, date: new Date(Date.UTC(2026, 11, 5, 21, 52, 26)), text: TEXT, html: HTML,
  }).compile().build();
}

async function small(ms) {
  const make = lib === 'ours' ? oursSmall : nodemailerSmall;
  let size = 0;
  for (let i = 0; i < 300; i++) size = (await make(i)).length; // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) await make(n++);
  const seconds = (performance.now() - start) / 1000;
  return { msgsPerSec: n / seconds, bytes: size };
}

/** The serialized message with `file` attached, as a stream of Buffers. */
function attachmentStream(file) {
  if (lib === 'ours') {
    const msg = new EmailMessage();
    msg.set('From', 'alice@example.com');
    msg.set('To', 'bob@example.com');
    msg.set('Subject', 'data');
    msg.setContent('attached\n');
    msg.addAttachment({ path: file }, { filename: 'data.bin' });
    return msg.stream();
  }
  return new MailComposer({ from: 'alice@example.com', to: 'bob@example.com', subject: 'data', text: 'attached\n', attachments: [{ path: file, filename: 'data.bin' }] }).compile().createReadStream();
}

/**
 * Pass 1: memory. Peak of RSS, heap (heapTotal) and Buffers (arrayBuffers: the memory of every ArrayBuffer,
 * so every Buffer) over the pass, from its start. This cell used to add `external` and `arrayBuffers`, but
 * `external` includes `arrayBuffers` (Node's documentation of process.memoryUsage()): Buffers were counted twice.
 */
async function memoryPass(file) {
  const before = process.memoryUsage();
  const peak = { rss: before.rss, heapTotal: before.heapTotal, arrayBuffers: before.arrayBuffers };
  const sample = () => {
    const now = process.memoryUsage();
    peak.rss = Math.max(peak.rss, now.rss);
    peak.heapTotal = Math.max(peak.heapTotal, now.heapTotal);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers);
  };
  const sampler = setInterval(sample, 5);
  let bytes = 0;
  try {
    if (lib !== 'bare') {
      for await (const chunk of attachmentStream(file)) {
        bytes += chunk.length;
        sample();
      }
    }
  } finally {
    clearInterval(sampler);
  }
  sample();
  return {
    bytes,
    startRssMB: before.rss / MiB,
    peakRssMB: peak.rss / MiB,
    rssGrowthMB: (peak.rss - before.rss) / MiB,
    heapGrowthMB: (peak.heapTotal - before.heapTotal) / MiB,
    arrayBuffersGrowthMB: (peak.arrayBuffers - before.arrayBuffers) / MiB,
  };
}

/** A timed pass: output MB per wall-clock second and per second of the process's CPU time (user + system, all threads). */
async function timedPass(file) {
  const cpu = process.cpuUsage();
  const start = performance.now();
  let bytes = 0;
  for await (const chunk of attachmentStream(file)) bytes += chunk.length;
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { mbPerSec: bytes / 1e6 / seconds, mbPerCpuSec: bytes / 1e6 / ((used.user + used.system) / 1e6) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function attach(file, passes) {
  const { settleRssMB } = await settleYoungGeneration();
  const memory = { initialRssMB, warmRssMB, settleRssMB, ...(await memoryPass(file)) };
  if (lib === 'bare') return memory;
  const timed = [];
  for (let i = 1; i < passes; i++) timed.push(await timedPass(file));
  return { ...memory, mbPerSec: median(timed.map((t) => t.mbPerSec)), mbPerCpuSec: median(timed.map((t) => t.mbPerCpuSec)) };
}

const result = kind === 'small' ? await small(Number(arg)) : await attach(arg, Number(passesArg ?? 4));
console.log('RESULT ' + JSON.stringify({ lib, kind, ...result }));
