// An in-process smtp-server (the npm package) on loopback, recording what it receives.
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { AddressInfo } from 'node:net';

export interface Received {
  from: string;
  to: string[];
  data: Buffer;
  secure: boolean;
  user?: string;
  params: Record<string, unknown>;
}

export interface TestServer {
  port: number;
  received: Received[];
  close(): Promise<void>;
}

export async function startServer(options: Partial<SMTPServerOptions> & { listen?: string | number; lmtpFail?: string[] } = {}): Promise<TestServer> {
  const received: Received[] = [];
  const { listen, lmtpFail, ...rest } = options;
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: rest.key ? [] : ['STARTTLS'],
    onRcptTo(address, _session, callback) {
      if (address.address.startsWith('bad')) return callback(Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }));
      callback();
    },
    onData(stream, session: SMTPServerSession, callback) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(parts),
          secure: session.secure,
          ...(session.user ? { user: String(session.user) } : {}),
          params: session.envelope.mailFrom ? (session.envelope.mailFrom.args as Record<string, unknown>) || {} : {},
        });
        if (lmtpFail) {
          callback(null, session.envelope.rcptTo.map((r) =>
            lmtpFail.includes(r.address) ? Object.assign(new Error('5.2.2 mailbox full'), { responseCode: 552 }) : 'delivered') as never);
          return;
        }
        callback();
      });
    },
    ...rest,
  });
  // TLS tests close connections mid-handshake on purpose; the server reports that as an 'error' event.
  server.on('error', () => {});
  await new Promise<void>((resolve) => {
    if (typeof listen === 'string') server.listen(listen, resolve);
    else server.listen(listen ?? 0, '127.0.0.1', resolve);
  });
  const address = server.server.address() as AddressInfo | string;
  return {
    port: typeof address === 'string' ? 0 : address.port,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
