// `npm run screenshots`: docs/screenshots/*.png from a real run. A capture
// server is started in process, our library sends a few messages to it
// (plain, STARTTLS + AUTH, HTML with an attachment), and headless Chromium
// photographs the web inbox: the list, an open message, its source, and the
// phone-sized layout. Nothing is drawn or edited by hand.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const outDir = `${root}docs/screenshots`;
const { startCapture } = await import(`${root}packages/capture/dist/index.js`);
const { SMTP } = await import(`${root}packages/smtplib/dist/esm/index.js`);
const { generateSelfSigned } = await import(`${root}packages/cli/dist/certs.js`);

const tls = await generateSelfSigned(['localhost', '127.0.0.1']);
const server = await startCapture({ port: 0, http: { port: 0 }, starttls: true, cert: tls.cert, key: tls.key, auth: [{ user: 'app', pass: 'app-password' }], authOptional: true });

async function send(from, to, message, { secure = false } = {}) {
  const smtp = await SMTP.connect({
    host: '127.0.0.1',
    port: server.smtp.port,
    localHostname: 'app.example.test',
    tlsPolicy: secure ? 'required' : 'none',
    ...(secure ? { tls: { ca: tls.cert, servername: 'localhost' } } : {}),
  });
  if (secure) await smtp.login('app', 'app-password');
  await smtp.sendmail(from, to, message);
  await smtp.quit();
}

const b = 'mixed-0a1b2c';
const a = 'alt-3d4e5f';
const receipt = [
  'From: Example Shop <orders@shop.example.test>',
  'To: Dana Reader <dana@example.test>',
  'Subject: Your order #1042 has shipped',
  'Date: Sat, 05 Dec 2026 22:10:00 +0000',
  'MIME-Version: 1.0',
  `Content-Type: multipart/mixed; boundary="${b}"`,
  '',
  `--${b}`,
  `Content-Type: multipart/alternative; boundary="${a}"`,
  '',
  `--${a}`,
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hi Dana, your order #1042 is on its way. Track it at https://shop.example.test/track/1042',
  `--${a}`,
  'Content-Type: text/html; charset=utf-8',
  '',
  '<div style="font-family:Georgia,serif;max-width:560px;margin:24px auto;padding:24px;border:1px solid #e5e1d8;border-radius:10px;background:#fffdf8">',
  '<h1 style="color:#7a3b12;margin:0 0 12px">Your order has shipped</h1>',
  '<p>Hi Dana,</p><p>order <b>#1042</b> left our warehouse this morning and should reach you on <b>Tuesday</b>.</p>',
  '<table style="width:100%;border-collapse:collapse;margin:16px 0"><tr><td style="padding:6px 0;border-bottom:1px solid #eee">Linen notebook &times; 2</td><td style="text-align:right;border-bottom:1px solid #eee">&euro;24.00</td></tr>',
  '<tr><td style="padding:6px 0">Fountain pen</td><td style="text-align:right">&euro;38.50</td></tr></table>',
  '<p><a href="https://shop.example.test/track/1042" style="background:#7a3b12;color:#fff;padding:10px 16px;border-radius:6px;text-decoration:none">Track your parcel</a></p>',
  '<img src="https://tracker.example.test/open.gif" width="1" height="1" alt="">',
  '</div>',
  `--${a}--`,
  '',
  `--${b}`,
  'Content-Type: application/pdf; name="invoice-1042.pdf"',
  'Content-Disposition: attachment; filename="invoice-1042.pdf"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('%PDF-1.4\n% invoice 1042\n').toString('base64'),
  `--${b}--`,
  '',
].join('\r\n');

await send('noreply@app.example.test', ['erin@example.test'], 'From: Example App <noreply@app.example.test>\r\nTo: erin@example.test\r\nSubject: Confirm your email address\r\n\r\nWelcome! Confirm your address: https://app.example.test/confirm/8f2c\r\n');
await send('alerts@app.example.test', ['ops@example.test', 'oncall@example.test'], 'From: Alerts <alerts@app.example.test>\r\nTo: ops@example.test\r\nCc: oncall@example.test\r\nSubject: [alert] queue depth above 1000\r\n\r\nThe outbound queue holds 1,204 messages (threshold 1,000).\r\n', { secure: true });
await send('security@app.example.test', ['frank@example.test'], 'From: Example App <security@app.example.test>\r\nTo: frank@example.test\r\nSubject: Password reset requested\r\n\r\nSomeone asked to reset your password. If it was you, use this link within 30 minutes.\r\n', { secure: true });
await send('orders@shop.example.test', ['dana@example.test'], receipt, { secure: true });

mkdirSync(outDir, { recursive: true });
const browser = await launchChromium({ viewport: { width: 1280, height: 760 }, deviceScaleFactor: 1 });
try {
  const page = await browser.context.newPage();
  await page.goto(server.http.url);
  await page.waitForFunction(() => document.querySelectorAll('#list li').length === 4 && document.getElementById('live')?.textContent === 'live');
  await page.locator('#list li').first().click();
  await page.frameLocator('#html-frame').locator('h1').waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${outDir}/inbox-list.png` });

  await page.click('[data-tab="mime"]');
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${outDir}/message-attachments.png` });
  await page.click('[data-tab="source"]');
  await page.locator('#transcript span').first().waitFor();
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${outDir}/message-source.png` });

  await page.setViewportSize({ width: 390, height: 760 });
  await page.click('#back');
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${outDir}/phone-list.png` });
  await page.locator('#list li').first().click();
  await page.click('[data-tab="html"]');
  await page.frameLocator('#html-frame').locator('h1').waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${outDir}/phone-message.png` });
} finally {
  await browser.close();
  await server.close();
}
console.log(`wrote ${outDir}/{inbox-list,message-attachments,message-source,phone-list,phone-message}.png`);
