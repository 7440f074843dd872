// sourceAddress (Python's source_address, msmtp's source_ip) binds the socket
// to one address family. A host name that resolves to the other family first
// (localhost → ::1, then 127.0.0.1, as on a fresh Debian) must still connect:
// the name is resolved in the source address's family.
import type { LookupAddress, LookupAllOptions, LookupOneOptions } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTP } from 'smtplib';
import { startServer, type TestServer } from './helpers.js';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A resolver that answers like a fresh Debian's /etc/hosts: ::1 before 127.0.0.1, unless a family is asked for. */
function ipv6FirstLookup(asked: number[]) {
  return (_host: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    const family = typeof options.family === 'number' ? options.family : 0;
    asked.push(family);
    const all: LookupAddress[] = [
      { address: '::1', family: 6 },
      { address: '127.0.0.1', family: 4 },
    ].filter((a) => family === 0 || a.family === family);
    if ((options as LookupAllOptions).all) callback(null, all);
    else callback(null, all[0]!.address, all[0]!.family);
  };
}

describe('sourceAddress and the address family', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('an IPv4 source address reaches a host whose name resolves to ::1 first', async () => {
    const asked: number[] = [];
    const smtp = await SMTP.connect({ host: 'localhost', port: server.port, sourceAddress: '127.0.0.1', lookup: ipv6FirstLookup(asked), tlsPolicy: 'none' });
    await smtp.sendmail('a@example.test', ['b@example.test'], 'Subject: via 127.0.0.1\r\n\r\nbody\r\n');
    await smtp.quit();
    expect(asked).toEqual([4]);
    expect(server.received.at(-1)!.data.toString()).toContain('via 127.0.0.1');
  });

  it('without a source address the name is resolved in every family', async () => {
    const asked: number[] = [];
    const smtp = await SMTP.connect({ host: 'localhost', port: server.port, lookup: ipv6FirstLookup(asked), tlsPolicy: 'none' });
    await smtp.quit();
    expect(asked).toEqual([0]);
  });
});
