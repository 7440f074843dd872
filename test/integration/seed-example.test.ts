// The seed's example program, ported (examples/seed-example.mjs), run against a real server.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startServer } from './helpers.js';

const root = new URL('../../', import.meta.url).pathname;

describe.runIf(existsSync(`${root}packages/smtplib/dist/esm/index.js`))('seed example', () => {
  it('prompts, sends with debug output, and the server receives the message', async () => {
    const server = await startServer();
    const child = spawn(process.execPath, ['examples/seed-example.mjs'], {
      cwd: root,
      env: { ...process.env, SMTP_HOST: '127.0.0.1', SMTP_PORT: String(server.port) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end('alice@example.org\nbob@example.org carol@example.org\nHello from the seed example.\n.a dot line\n');
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(0);
    expect(stdout).toContain('From: To: Enter message');
    expect(stdout).toMatch(/Message length is \d+/);
    expect(stderr).toContain("send: 'MAIL FROM:<alice@example.org>");
    expect(stderr).toContain('reply: retcode (250)');
    const got = server.received.at(-1)!;
    expect(got.to).toEqual(['bob@example.org', 'carol@example.org']);
    expect(got.data.toString()).toBe('From: alice@example.org\r\nTo: bob@example.org, carol@example.org\r\n\r\nHello from the seed example.\r\n.a dot line\r\n');
    await server.close();
  });
});
