// One measurement of bench/suites/email.js, in its own process so its RSS is its own:
//   node bench/lib/email-cell.js <ours|nodemailer> small <ms>       → compose + serialize a 1 KB text+HTML message, msgs/s
//   node bench/lib/email-cell.js <ours|nodemailer> attach <file>    → a message with that file attached, streamed out: MB/s, peak RSS
// Prints `RESULT {json}`. Only the library measured is loaded, so the process's RSS is its own.

const [lib, kind, arg] = process.argv.slice(2);
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

async function attach(file) {
  const before = process.memoryUsage();
  let peak = before.rss;
  let peakHeap = before.heapTotal;
  let peakOffHeap = before.external + before.arrayBuffers;
  const sample = () => {
    const now = process.memoryUsage();
    peak = Math.max(peak, now.rss);
    peakHeap = Math.max(peakHeap, now.heapTotal);
    peakOffHeap = Math.max(peakOffHeap, now.external + now.arrayBuffers);
  };
  const sampler = setInterval(sample, 5);
  const start = performance.now();
  let stream;
  if (lib === 'ours') {
    const msg = new EmailMessage();
    msg.set('From', 'alice@example.com');
    msg.set('To', 'bob@example.com');
    msg.set('Subject', 'data');
    msg.setContent('attached\n');
    msg.addAttachment({ path: file }, { filename: 'data.bin' });
    stream = msg.stream();
  } else {
    stream = new MailComposer({ from: 'alice@example.com', to: 'bob@example.com', subject: 'data', text: 'attached\n', attachments: [{ path: file, filename: 'data.bin' }] }).compile().createReadStream();
  }
  let bytes = 0;
  for await (const chunk of stream) bytes += chunk.length;
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  sample();
  const MiB = 1048576;
  return {
    mbPerSec: bytes / 1e6 / seconds,
    bytes,
    baseRssMB: before.rss / MiB,
    peakRssMB: peak / MiB,
    rssGrowthMB: (peak - before.rss) / MiB,
    heapGrowthMB: (peakHeap - before.heapTotal) / MiB,
    offHeapGrowthMB: (peakOffHeap - before.external - before.arrayBuffers) / MiB,
  };
}

const result = kind === 'small' ? await small(Number(arg)) : await attach(arg);
console.log('RESULT ' + JSON.stringify({ lib, kind, ...result }));
