// The seed example's dialogue (From, To, message up to ^D) and the hidden
// password prompt, typed into a real terminal: tmux.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDebugServer, type DebugServerOptions } from '../../packages/cli/src/serve.js';
import { assertBuilt, BIN, tempDir } from './helpers.js';

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const tmuxMissing = !hasTmux();
if (tmuxMissing) console.warn('interactive CLI tests skipped: tmux is not installed (apt-get install tmux)');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: DebugServerOptions = {}) {
  const s = await startDebugServer({ port: 0, ...opts });
  cleanups.push(() => s.close());
  return s;
}

/** A command in a detached tmux session of its own; `screen()` reads the pane. */
function terminal(command: string[], env: Record<string, string> = {}) {
  const name = `smtplib-test-${randomUUID().slice(0, 8)}`;
  const socket = `smtplib-test-${process.pid}`;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const envs = Object.entries(env).map(([k, v]) => `${k}=${q(v)}`).join(' ');
  const shell = `env ${envs} ${command.map(q).join(' ')}; echo "EXIT=$?"; sleep 60`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  tmux('new-session', '-d', '-s', name, '-x', '160', '-y', '50', shell);
  cleanups.push(() => {
    try {
      tmux('kill-session', '-t', name);
    } catch {
      /* already gone */
    }
  });
  return {
    keys: (...keys: string[]) => tmux('send-keys', '-t', name, ...keys),
    /** Types literal text (no key-name interpretation). */
    type: (text: string) => tmux('send-keys', '-t', name, '-l', text),
    screen: () => tmux('capture-pane', '-p', '-t', name, '-S', '-200'),
    async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = tmux('capture-pane', '-p', '-t', name, '-S', '-200');
        if (pattern.test(s)) return s;
        if (Date.now() > end) throw new Error(`terminal never showed ${pattern}; it shows:\n${s}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

describe.skipIf(tmuxMissing)('interactive send in a terminal (tmux)', () => {
  const env = () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return { XDG_CONFIG_HOME: t.dir, SMTPLIB_CONFIG: '' };
  };
  beforeAll(assertBuilt);

  it('asks for From, To and the message, as the seed example does, and sends it', async () => {
    const s = await server();
    const term = terminal([process.execPath, BIN, 'send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none'], env());
    await term.waitFor(/^From:\s*$/m);
    term.type('alice@example.test');
    term.keys('Enter');
    await term.waitFor(/^To:\s*$/m);
    term.type('bob@example.test carol@example.test');
    term.keys('Enter');
    await term.waitFor(/Enter message, end with \^D/);
    term.type('Hello Bob,');
    term.keys('Enter');
    term.type('see you at noon.');
    term.keys('Enter');
    term.keys('C-d');
    const screen = await term.waitFor(/EXIT=\d+/);
    expect(screen).toMatch(/EXIT=0/);
    const m = s.messages[0]!;
    expect(m.mailFrom.address).toBe('alice@example.test');
    expect(m.rcptTo.map((r) => r.address)).toEqual(['bob@example.test', 'carol@example.test']);
    const expected = 'From: alice@example.test\r\nTo: bob@example.test, carol@example.test\r\n\r\nHello Bob,\r\nsee you at noon.\r\n';
    expect(m.raw.toString()).toBe(expected);
    expect(screen).toContain(`Message length is ${expected.length}`);
  });

  it('asks for the password without echoing it', async () => {
    const s = await server({ auth: [{ user: 'alice', pass: 'tty-secret' }] });
    const term = terminal(
      [process.execPath, BIN, 'send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--user', 'alice', '--from', 'alice@example.test', '--to', 'bob@example.test', '--subject', 'pw', '--body', 'x'],
      env(),
    );
    await term.waitFor(/Password for alice:\s*$/m);
    term.type('tty-secret');
    term.keys('Enter');
    const screen = await term.waitFor(/EXIT=\d+/);
    expect(screen).toMatch(/EXIT=0/);
    expect(screen).not.toContain('tty-secret');
    expect(s.messages[0]!.user).toBe('alice');
  });
});
