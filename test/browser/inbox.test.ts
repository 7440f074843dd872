// The web inbox in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Mail is sent by our library to the real SMTP side; a
// second loopback HTTP server stands for "the internet" and counts every
// request the message's HTML makes, so blocked means zero requests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { SMTP } from 'smtplib';
import { startCapture, type CaptureServer } from '../../packages/capture/src/index.js';
// @ts-expect-error plain .mjs helper shared with the screenshot script
import { chromiumAvailable, launchChromium, CHROMIUM } from '../../packages/capture/scripts/chromium.mjs';

const inCI = process.env.CI === 'true';
const haveChromium = chromiumAvailable() as boolean;
if (!haveChromium) {
  if (inCI) throw new Error(`${CHROMIUM} is missing: CI must install chromium (.ci/apt-packages)`);
  console.warn(`skipping the browser tests: ${CHROMIUM} is missing (apt-get install chromium)`);
}

let capture: CaptureServer;
let remote: Server;
let remoteUrl: string;
const remoteHits: string[] = [];
let browser: { context: BrowserContext; close: () => Promise<void> } | undefined;
let page: Page;
let navigations = 0;

// Bytes that survive only if the attachment is decoded and served exactly.
const ATTACHMENT = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256));

function richMessage(subject: string, to: string): string {
  const b = 'b-outer-7f3a';
  const a = 'b-alt-19c2';
  return [
    'From: Shop <shop@example.test>',
    `To: ${to}`,
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
    `--${b}`,
    `Content-Type: multipart/alternative; boundary="${a}"`,
    '',
    `--${a}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Your order has shipped.',
    `--${a}`,
    'Content-Type: text/html; charset=utf-8',
    '',
    `<h1 id="greeting">Your order has shipped</h1><img id="tracker" src="${remoteUrl}/remote.png" alt="tracker">`,
    `<script>fetch("${remoteUrl}/script-ran")</script>`,
    `--${a}--`,
    '',
    `--${b}`,
    'Content-Type: application/octet-stream; name="invoice.bin"',
    'Content-Disposition: attachment; filename="invoice.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    ATTACHMENT.toString('base64').replace(/.{76}/g, '$&\r\n'),
    `--${b}--`,
    '',
  ].join('\r\n');
}

async function send(subject: string, to: string, message = richMessage(subject, to)): Promise<void> {
  const smtp = await SMTP.connect({ host: '127.0.0.1', port: capture.smtp.port, localHostname: 'app.test' });
  await smtp.sendmail('shop@example.test', [to], message);
  await smtp.quit();
}

const listItems = () => page.locator('#list li');

describe.skipIf(!haveChromium)('web inbox in Chromium', () => {
  beforeAll(async () => {
    capture = await startCapture({ port: 0, http: { port: 0 } });
    remote = createServer((req, res) => {
      remoteHits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'image/png', 'access-control-allow-origin': '*' });
      // a 1x1 transparent PNG
      res.end(Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64'));
    });
    await new Promise<void>((r) => remote.listen(0, '127.0.0.1', r));
    remoteUrl = `http://127.0.0.1:${(remote.address() as AddressInfo).port}`;
    try {
      browser = await launchChromium({ viewport: { width: 1280, height: 800 } });
    } catch (err) {
      throw new Error(`Chromium (${CHROMIUM}) did not start: ${(err as Error).message}`);
    }
    page = await browser!.context.newPage();
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    await page.goto(capture.http!.url);
    await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await capture?.close();
    await new Promise<void>((r) => (remote ? remote.close(() => r()) : r()));
  });

  it('shows a message sent by the library without a reload, with from, to, subject, size and flags', async () => {
    expect(await listItems().count()).toBe(0);
    await send('Your order #1001', 'buyer@example.test');
    await expect.poll(() => listItems().count()).toBe(1);
    const item = listItems().first();
    expect(await item.locator('.li-subject').textContent()).toContain('Your order #1001');
    expect(await item.locator('.li-from').textContent()).toBe('Shop <shop@example.test>');
    expect(await item.locator('.li-to').textContent()).toBe('To: buyer@example.test');
    expect(await item.locator('.li-size').textContent()).toMatch(/^\d+(\.\d)? (B|KB)$/);
    expect(await item.locator('.flag').allTextContents()).toEqual(['PLAIN', 'ATT']);
    expect(navigations).toBe(1); // only the first page load
  });

  it('opens it: HTML in a sandboxed frame without scripts, the remote image blocked until asked for', async () => {
    await listItems().first().click();
    await expect.poll(() => page.locator('#v-subject').textContent()).toBe('Your order #1001');
    const frameEl = page.locator('#html-frame');
    expect(await frameEl.getAttribute('sandbox')).toBe('allow-popups allow-popups-to-escape-sandbox');
    const frame = page.frameLocator('#html-frame');
    await expect.poll(() => frame.locator('#greeting').textContent()).toBe('Your order has shipped');
    await page.waitForTimeout(400);
    expect(remoteHits).toEqual([]); // neither the image nor the script's fetch reached "the internet"
    expect(await frame.locator('#tracker').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(0);

    await page.click('#remote-toggle');
    await expect.poll(() => remoteHits.filter((u) => u === '/remote.png').length).toBe(1);
    await expect.poll(() => frame.locator('#tracker').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(1);
    expect(remoteHits).not.toContain('/script-ran'); // still no script, even with remote content on
    await page.click('#remote-toggle');
  });

  it('shows text, headers, the source with envelope and transcript, and downloads the attachment byte for byte', async () => {
    await page.click('[data-tab="text"]');
    expect(await page.locator('#tab-text').textContent()).toContain('Your order has shipped.');
    await page.click('[data-tab="headers"]');
    expect(await page.locator('#headers-table').textContent()).toContain('Subject');
    await page.click('[data-tab="source"]');
    await expect.poll(() => page.locator('#envelope').textContent()).toContain('RCPT TO:    <buyer@example.test>');
    expect(await page.locator('#transcript').textContent()).toContain('C: MAIL FROM:<shop@example.test>');
    expect(await page.locator('#raw').textContent()).toContain('Subject: Your order #1001');

    await page.click('[data-tab="mime"]');
    expect(await page.locator('#mime-tree').textContent()).toMatch(/multipart\/mixed[\s\S]*multipart\/alternative[\s\S]*application\/octet-stream/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#attachments a').first().click()]);
    expect(download.suggestedFilename()).toBe('invoice.bin');
    const path = await download.path();
    expect(readFileSync(path).equals(ATTACHMENT)).toBe(true);
  });

  it('search narrows the list, keyboard moves the selection, delete removes a message', async () => {
    await send('Password reset', 'someone@example.test', 'From: app@example.test\r\nTo: someone@example.test\r\nSubject: Password reset\r\n\r\nClick the link.\r\n');
    await expect.poll(() => listItems().count()).toBe(2);
    await page.fill('#search', 'subject:reset');
    await expect.poll(() => listItems().count()).toBe(1);
    expect(await listItems().first().locator('.li-subject').textContent()).toContain('Password reset');
    await page.fill('#search', 'shipped');
    await expect.poll(() => listItems().allTextContents()).toEqual([expect.stringContaining('Your order #1001')]);
    await page.fill('#search', '');
    await expect.poll(() => listItems().count()).toBe(2);

    await page.locator('#list').focus();
    await page.keyboard.press('k'); // newest first: up to "Password reset"
    await expect.poll(() => page.locator('#v-subject').textContent()).toBe('Password reset');
    await page.keyboard.press('j');
    await expect.poll(() => page.locator('#v-subject').textContent()).toBe('Your order #1001');

    await page.keyboard.press('Delete');
    await expect.poll(() => listItems().count()).toBe(1);
    expect(capture.store.all().map((m) => m.subject)).toEqual(['Password reset']);
    page.once('dialog', (d) => void d.accept());
    await page.click('#delete-all');
    await expect.poll(() => listItems().count()).toBe(0);
    expect(capture.store.size).toBe(0);
    expect(navigations).toBe(1);
  });

  it('is readable on a phone-sized window: one pane at a time, nothing wider than the screen', async () => {
    await send('Small screen', 'phone@example.test');
    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(() => listItems().count()).toBe(1);
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await listItems().first().click();
    await expect.poll(() => page.locator('#v-subject').isVisible()).toBe(true);
    expect(await page.locator('#list-pane').isVisible()).toBe(false);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await page.click('#back');
    await expect.poll(() => page.locator('#list-pane').isVisible()).toBe(true);
  });
});
