// node:diagnostics_channel events: what is published, and that no secret is.
import dc from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTP, SMTPPool, diagnosticsChannels } from '../../packages/smtplib/src/index.js';
import { message, startFaultServer, startSmtpServer } from './helpers.js';

type Event = { channel: string; data: Record<string, unknown> };

function record(): { events: Event[]; stop(): void } {
  const events: Event[] = [];
  const names = ['smtplib:connect', 'smtplib:command', 'smtplib:reply', 'smtplib:send', 'smtplib:error'];
  const handlers = names.map((name) => {
    const handler = (data: unknown) => events.push({ channel: name, data: data as Record<string, unknown> });
    dc.subscribe(name, handler);
    return [name, handler] as const;
  });
  return { events, stop: () => handlers.forEach(([name, handler]) => dc.unsubscribe(name, handler)) };
}

let stop: (() => void) | undefined;
afterEach(() => {
  stop?.();
  stop = undefined;
});

describe('diagnostics channels', () => {
  it('publishes connect, commands (masked like the debug log), replies and sends; never a secret', async () => {
    const server = await startSmtpServer({ users: { 'user@example.test': 'hunter2-very-secret' } });
    const debug: string[] = [];
    const recorder = record();
    stop = recorder.stop;
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', debugLevel: 1, debugOutput: (line) => debug.push(line) });
    await smtp.login('user@example.test', 'hunter2-very-secret', { mechanism: 'PLAIN' });
    await smtp.deliver('a@example.test', ['b@example.test'], message(1));
    await smtp.quit();
    await server.close();

    const { events } = recorder;
    const connect = events.find((e) => e.channel === 'smtplib:connect')!;
    expect(connect.data).toMatchObject({ host: '127.0.0.1', port: server.port, secure: false, greeting: { code: 220 } });
    const id = connect.data.connectionId;
    expect(typeof id).toBe('number');
    const commands = events.filter((e) => e.channel === 'smtplib:command').map((e) => e.data.command as string);
    expect(commands).toContain('EHLO client.test');
    expect(commands).toContain('AUTH PLAIN ****');
    expect(commands.some((c) => c.startsWith('MAIL FROM:<a@example.test>'))).toBe(true);
    expect(commands).toContain('RCPT TO:<b@example.test>');
    expect(commands).toContain('QUIT');
    // Exactly the lines the debug log shows as sent.
    const sent = debug.filter((l) => l.startsWith("send: '") && !l.includes('\\r\\n.')).map((l) => l.slice(7, -5));
    const sentCommands = sent.filter((l) => /^[A-Z]{4}/.test(l));
    expect(sentCommands).toContain('AUTH PLAIN ****');
    expect(sentCommands.length).toBeGreaterThanOrEqual(5);
    for (const line of sentCommands) expect(commands).toContain(line.replace(/\\'/g, "'"));
    const replies = events.filter((e) => e.channel === 'smtplib:reply');
    expect(replies.map((r) => r.data.code)).toContain(235);
    expect(replies.every((r) => r.data.connectionId === id)).toBe(true);
    const send = events.find((e) => e.channel === 'smtplib:send')!;
    expect(send.data).toMatchObject({ connectionId: id, accepted: ['b@example.test'], refused: [], code: 250 });
    expect(typeof send.data.durationMs).toBe('number');
    const everything = JSON.stringify(events.map((e) => e.data));
    expect(everything).not.toContain('hunter2');
    expect(everything).not.toContain(Buffer.from('\0user@example.test\0hunter2-very-secret').toString('base64'));
  });

  it('publishes connection errors, and the pool works with subscribers attached', async () => {
    const server = await startFaultServer({ fault: (c) => (c.verb === 'MAIL' && c.connection.id === 1 ? { drop: true } : undefined) });
    const recorder = record();
    stop = recorder.stop;
    const pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', retry: { minDelayMs: 1, maxDelayMs: 5 } });
    const result = await pool.sendmail('a@example.test', 'b@example.test', message(2));
    expect(result.attempts).toBe(2);
    await pool.close();
    await server.close();
    const errors = recorder.events.filter((e) => e.channel === 'smtplib:error');
    expect(errors.some((e) => e.data.scope === 'connection' && (e.data.error as Error).name === 'SMTPServerDisconnected')).toBe(true);
    expect(errors.some((e) => e.data.scope === 'transaction')).toBe(true);
    expect(recorder.events.filter((e) => e.channel === 'smtplib:send')).toHaveLength(1);
  });

  it('publishes nothing when no one subscribes: a whole session calls no channel\'s publish()', async () => {
    const server = await startSmtpServer({ users: { user: 'pw' } });
    const calls: string[] = [];
    const originals = Object.entries(diagnosticsChannels).map(([name, channel]) => {
      const publish = channel.publish;
      channel.publish = (message: unknown) => { calls.push(name); publish.call(channel, message); };
      return () => { channel.publish = publish; };
    });
    try {
      for (const channel of Object.values(diagnosticsChannels)) expect(channel.hasSubscribers).toBe(false);
      const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
      await smtp.login('user', 'pw', { mechanism: 'PLAIN' });
      await smtp.deliver('a@example.test', ['b@example.test'], message(3));
      await smtp.deliver('a@example.test', ['b@example.test'], message(4)).catch(() => undefined);
      await smtp.quit();
      expect(calls).toEqual([]);
      // The same spies do see events once someone listens (so the check above could fail).
      const recorder = record();
      stop = recorder.stop;
      const again = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
      await again.quit();
      expect(calls).toContain('connect');
    } finally {
      for (const restore of originals) restore();
      await server.close();
    }
  });
});
