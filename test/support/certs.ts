// Throw-away TLS material made per test run with openssl: a CA, a server
// certificate for localhost / mail.example.test / 127.0.0.1 / ::1 signed by
// it, and the certificates of the usual failures (self-signed, unknown CA,
// wrong name, expired). Cached per process.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pair {
  key: string;
  cert: string;
}

export interface TestPki {
  dir: string;
  ca: string;
  otherCa: string;
  server: Pair;
  selfSigned: Pair;
  unknownCa: Pair;
  wrongName: Pair;
  expired: Pair;
  client: Pair;
}

let cached: TestPki | undefined;

export function testPki(): TestPki {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-pki-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const makeCa = (name: string) => {
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name} test CA`);
  };
  const makeLeaf = (name: string, ca: string, sans: string, days: string, extra: string[] = []) => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', days, '-extfile', `${name}.ext`, ...extra);
  };
  makeCa('ca');
  makeCa('other-ca');
  makeLeaf('server', 'ca', 'DNS:localhost,DNS:mail.example.test,IP:127.0.0.1,IP:::1', '2');
  makeLeaf('unknown', 'other-ca', 'DNS:localhost,DNS:mail.example.test,IP:127.0.0.1,IP:::1', '2');
  makeLeaf('wrongname', 'ca', 'DNS:other.example.test', '2');
  makeLeaf('client', 'ca', 'DNS:client.example.test', '2');
  // Expired: its validity ends a day before it starts (openssl 3.0 has no -not_after).
  makeLeaf('expired', 'ca', 'DNS:localhost,DNS:mail.example.test,IP:127.0.0.1', '-1');
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'self.key', '-out', 'self.pem', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,DNS:mail.example.test,IP:127.0.0.1');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const pair = (n: string): Pair => ({ key: read(`${n}.key`), cert: read(`${n}.pem`) });
  cached = {
    dir,
    ca: read('ca.pem'),
    otherCa: read('other-ca.pem'),
    server: pair('server'),
    selfSigned: pair('self'),
    unknownCa: pair('unknown'),
    wrongName: pair('wrongname'),
    expired: pair('expired'),
    client: pair('client'),
  };
  return cached;
}
