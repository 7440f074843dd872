// Independent DKIM verifiers for the tests: Python's dkimpy (Debian
// python3-dkim), OpenDKIM's library through `opendkim -t` (Debian opendkim),
// and mailauth (npm). Each is given the public keys directly (dkimpy: a
// dnsfunc; OpenDKIM: TestPublicKeys; mailauth: a resolver), so no DNS is used.
// Every verifier reports one verdict per DKIM-Signature field, in field order.

import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dkimDnsRecord } from 'smtplib';

const run = promisify(execFile);

export const PYTHON = '/usr/bin/python3';
export const OPENDKIM = '/usr/sbin/opendkim';
export const DOMAIN = 'example.com';

export type VerifierName = 'dkimpy' | 'opendkim' | 'mailauth';
export const VERIFIERS: readonly VerifierName[] = ['dkimpy', 'opendkim', 'mailauth'];

export interface TestKey {
  selector: string;
  privateKey: KeyObject;
  pem: string;
  record: string;
}

export interface TestKeys {
  dir: string;
  rsa: TestKey;
  ed25519: TestKey;
  /** TXT records by name, as a DNS zone would serve them. */
  records: Map<string, string>;
  cleanup(): void;
}

/** Why a verifier cannot run here, or undefined when all can. */
export function missingVerifiers(): string | undefined {
  const missing: string[] = [];
  if (!existsSync(PYTHON)) missing.push(`${PYTHON} (Debian python3)`);
  if (!existsSync('/usr/lib/python3/dist-packages/dkim/__init__.py')) missing.push('dkimpy (Debian python3-dkim)');
  if (!existsSync(OPENDKIM)) missing.push(`${OPENDKIM} (Debian opendkim)`);
  return missing.length ? `DKIM verifiers not installed: ${missing.join(', ')}` : undefined;
}

/** Outside CI a missing verifier skips with its reason printed; under CI=true it fails. */
export function verifierGate(): { skip: boolean } {
  const reason = missingVerifiers();
  if (!reason) return { skip: false };
  if (process.env.CI === 'true') throw new Error(`${reason}; CI installs them from .ci/apt-packages`);
  console.warn(`SKIP dkim verifier tests: ${reason}`);
  return { skip: true };
}

export function makeKeys(): TestKeys {
  const dir = mkdtempSync(join(tmpdir(), 'dkim-test-'));
  const key = (selector: string, type: 'rsa' | 'ed25519'): TestKey => {
    const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
    const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    return { selector, privateKey: pair.privateKey, pem, record: dkimDnsRecord(pair.publicKey) };
  };
  const rsa = key('rsa2048', 'rsa');
  const ed25519 = key('ed', 'ed25519');
  const records = new Map([
    [`${rsa.selector}._domainkey.${DOMAIN}`, rsa.record],
    [`${ed25519.selector}._domainkey.${DOMAIN}`, ed25519.record],
  ]);
  writeFileSync(join(dir, 'keys.txt'), [...records].map(([name, record]) => `${name} ${record}\n`).join(''));
  writeFileSync(join(dir, 'opendkim.conf'), `Mode v\nTestPublicKeys ${join(dir, 'keys.txt')}\nSyslog no\nAlwaysAddARHeader yes\n`);
  writeFileSync(join(dir, 'records.json'), JSON.stringify(Object.fromEntries(records)));
  writeFileSync(join(dir, 'verify.py'), DKIMPY_SCRIPT);
  return { dir, rsa, ed25519, records, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// dkimpy, one process for a whole batch: for each file, the verdict of each signature (idx).
const DKIMPY_SCRIPT = `
import dkim, json, sys
records = {k.encode() + b'.': v.encode() for k, v in json.load(open(sys.argv[1])).items()}
def dnsfunc(name, timeout=5):
    return records.get(name if name.endswith(b'.') else name + b'.')
out = []
for path in sys.argv[2:]:
    message = open(path, 'rb').read()
    headers = [h for h in dkim.rfc822_parse(message)[0] if h[0].lower() == b'dkim-signature']
    verdicts = []
    for i in range(len(headers)):
        try:
            verdicts.append(bool(dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc)))
        except Exception:
            verdicts.append(False)
    out.append(verdicts)
print(json.dumps(out))
`;

export type Verdicts = Record<VerifierName, boolean[]>;

/** Verifies each message with every verifier; returns per message the verdict of each signature. */
export async function verifyAll(keys: TestKeys, messages: readonly Buffer[]): Promise<Verdicts[]> {
  const batch = mkdtempSync(join(keys.dir, 'batch-'));
  const files = messages.map((message, i) => {
    const path = join(batch, `m${i}.eml`);
    writeFileSync(path, message);
    return path;
  });
  try {
    const [dkimpy, opendkim, mailauth] = await Promise.all([
      dkimpyVerdicts(keys, files),
      opendkimVerdicts(keys, files),
      Promise.all(messages.map((m) => mailauthVerdicts(keys, m))),
    ]);
    return messages.map((_, i) => ({ dkimpy: dkimpy[i]!, opendkim: opendkim[i]!, mailauth: mailauth[i]! }));
  } finally {
    rmSync(batch, { recursive: true, force: true });
  }
}

async function dkimpyVerdicts(keys: TestKeys, files: readonly string[]): Promise<boolean[][]> {
  const { stdout } = await run(PYTHON, [join(keys.dir, 'verify.py'), join(keys.dir, 'records.json'), ...files], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as boolean[][];
}

/**
 * `opendkim -t a,b,c` runs the milter's verify path over each file and, at
 * -vvv, prints to stdout the Authentication-Results field it would add: one
 * per file, in file order, with one dkim= result per signature.
 */
async function opendkimVerdicts(keys: TestKeys, files: readonly string[]): Promise<boolean[][]> {
  const out: boolean[][] = [];
  // In slices: the file list is one argument.
  for (let i = 0; i < files.length; i += 40) {
    const slice = files.slice(i, i + 40);
    const { stdout } = await run(OPENDKIM, ['-x', join(keys.dir, 'opendkim.conf'), '-vvv', '-t', slice.join(',')], { maxBuffer: 64 * 1024 * 1024 });
    const blocks = stdout.split('### INSHEADER').slice(1).filter((b) => b.includes("hname='Authentication-Results'"));
    if (blocks.length !== slice.length) throw new Error(`opendkim -t printed ${blocks.length} results for ${slice.length} messages:\n${stdout}`);
    for (const block of blocks) out.push([...block.matchAll(/^\s*dkim=(\w+)/gm)].map((m) => m[1] === 'pass'));
  }
  return out;
}

async function mailauthVerdicts(keys: TestKeys, message: Buffer): Promise<boolean[]> {
  const { dkimVerify } = (await import('mailauth/lib/dkim/verify.js')) as { dkimVerify: (m: Buffer, o: object) => Promise<{ results: { status: { result: string } }[] }> };
  const resolver = async (name: string, type: string): Promise<string[][]> => {
    const record = type === 'TXT' ? keys.records.get(name) : undefined;
    if (record) return [[record]];
    throw Object.assign(new Error(`no ${type} record for ${name}`), { code: 'ENOTFOUND' });
  };
  const { results } = await dkimVerify(message, { resolver });
  return results.map((r) => r.status.result === 'pass');
}
