// Every algorithm × canonicalization × input shape, and every hard case, is
// sent through a real SMTP server (smtp-server on loopback), and the bytes
// the server stored are verified by three independent verifiers: dkimpy,
// OpenDKIM and mailauth. A tampered copy of a signed message must fail with
// each of them, so a verifier that passes everything would be caught.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTP, type DkimAlgorithm, type DkimCanonicalization, type DkimOptions, type MessageInput } from 'smtplib';
import { startServer, type TestServer } from '../integration/helpers.js';
import { HARD_CASES, INPUT_KINDS, largeCase, toInput, type InputKind } from './messages.js';
import { DOMAIN, makeKeys, verifierGate, verifyAll, VERIFIERS, type TestKeys, type Verdicts } from './verifiers.js';

const ALGORITHMS: readonly DkimAlgorithm[] = ['rsa-sha256', 'ed25519-sha256'];
const CANONICALIZATIONS: readonly DkimCanonicalization[] = ['relaxed/relaxed', 'relaxed/simple', 'simple/simple'];
const gate = verifierGate();

interface Sent {
  label: string;
  group: 'input' | 'hard' | 'control';
  algorithm: string;
  canonicalization: string;
  /** The input shape, or the hard case. */
  subject: string;
  signatures: number;
  /** A verifier documented to fail on this message (see messages.ts). */
  knownFailure?: string;
  received?: Buffer;
  verdicts?: Verdicts;
}

describe.skipIf(gate.skip)('DKIM signatures verified by dkimpy, OpenDKIM and mailauth', () => {
  let keys: TestKeys;
  let server: TestServer;
  let dir: string;
  const sent: Sent[] = [];
  let tampered: Verdicts[] = [];

  const options = (algorithm: DkimAlgorithm | 'dual', canonicalization: DkimCanonicalization): DkimOptions | DkimOptions[] => {
    const one = (a: DkimAlgorithm): DkimOptions => {
      const key = a === 'rsa-sha256' ? keys.rsa : keys.ed25519;
      return { domain: DOMAIN, selector: key.selector, privateKey: a === 'rsa-sha256' ? key.pem : key.privateKey, algorithm: a, canonicalization };
    };
    return algorithm === 'dual' ? [one('rsa-sha256'), one('ed25519-sha256')] : one(algorithm);
  };

  beforeAll(async () => {
    keys = makeKeys();
    dir = mkdtempSync(join(tmpdir(), 'dkim-inputs-'));
    server = await startServer();
    const send = async (smtp: SMTP, input: MessageInput, utf8: boolean, dkim?: DkimOptions | DkimOptions[]) => {
      const extra = dkim ? { dkim } : {};
      if (utf8) await smtp.deliverMessage(input, extra);
      else await smtp.deliver('alice@example.com', ['bob@example.org'], input, extra);
      return server.received[server.received.length - 1]!.data;
    };

    // 1. Algorithm × canonicalization × input shape, with the connection's dkim option.
    for (const algorithm of [...ALGORITHMS, 'dual'] as const) {
      for (const canonicalization of CANONICALIZATIONS) {
        const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, dkim: options(algorithm, canonicalization) });
        const kinds: [InputKind | 'stream (spooled past 1 MiB)', Buffer][] = [
          ...INPUT_KINDS.map((k): [InputKind, Buffer] => [k, HARD_CASES.find((c) => c.name === 'dot-stuffing')!.bytes]),
          ['stream (spooled past 1 MiB)', largeCase().bytes],
        ];
        for (const [kind, bytes] of kinds) {
          const input = toInput(kind === 'stream (spooled past 1 MiB)' ? 'stream' : kind, bytes, dir, kind);
          const received = await send(smtp, input, false);
          sent.push({ label: `${algorithm} ${canonicalization} ${kind}`, group: 'input', algorithm, canonicalization, subject: kind, signatures: algorithm === 'dual' ? 2 : 1, received });
        }
        await smtp.quit();
      }
    }

    // 2. Every hard case, each algorithm and canonicalization, with the per-send dkim option.
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
    for (const c of HARD_CASES) {
      for (const algorithm of ALGORITHMS) {
        for (const canonicalization of CANONICALIZATIONS) {
          const received = await send(smtp, c.bytes, Boolean(c.utf8), options(algorithm, canonicalization) as DkimOptions);
          const knownFailure = c.simpleHeaderLimitation && canonicalization.startsWith('simple/') ? c.simpleHeaderLimitation.verifier : undefined;
          sent.push({ label: `${c.name}: ${algorithm} ${canonicalization}`, group: 'hard', algorithm, canonicalization, subject: c.name, signatures: 1, received, ...(knownFailure ? { knownFailure } : {}) });
        }
      }
    }
    await smtp.quit();

    const verdicts = await verifyAll(keys, sent.map((s) => s.received!));
    verdicts.forEach((v, i) => { sent[i]!.verdicts = v; });
    // Negative controls: one changed body byte, one changed signed header.
    const signed = sent[0]!.received!;
    const bodyTampered = Buffer.from(signed.toString('latin1').replace('..\r\n', '.x\r\n'), 'latin1');
    const headerTampered = Buffer.from(signed.toString('latin1').replace('Subject: DKIM test', 'Subject: DKIM tesT'), 'latin1');
    tampered = await verifyAll(keys, [bodyTampered, headerTampered]);
    // `node test/dkim/report.mjs` turns this into the matrix in docs/dkim.md.
    if (process.env.DKIM_MATRIX_REPORT) {
      const rows = [
        ...sent.map(({ received, ...row }) => row),
        ...tampered.map((verdicts, i) => ({ label: i ? 'header tampered' : 'body tampered', group: 'control', algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed', subject: '', signatures: 1, verdicts })),
      ];
      writeFileSync(process.env.DKIM_MATRIX_REPORT, JSON.stringify(rows, null, 1));
    }
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    keys?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the server stored every message once, with the signature fields first', () => {
    expect(sent.length).toBe(4 * 3 * 6 - 3 * 6 + HARD_CASES.length * 2 * 3);
    for (const s of sent) expect(s.received!.subarray(0, 15).toString()).toBe('DKIM-Signature:');
  });

  it('every verifier rejects a tampered body and a tampered header', () => {
    for (const v of tampered) for (const name of VERIFIERS) expect(v[name], name).toEqual([false]);
  });

  it('every message passes every verifier, for every signature it carries', () => {
    const failures: string[] = [];
    for (const s of sent) {
      for (const name of VERIFIERS) {
        if (s.knownFailure === name) continue;
        const verdict = s.verdicts![name];
        if (verdict.length !== s.signatures || verdict.some((ok) => !ok)) failures.push(`${s.label}: ${name} ${JSON.stringify(verdict)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('the documented OpenDKIM limitation is real: simple header canonicalization over "Name:value" fails there, passes the others', () => {
    const limited = sent.filter((s) => s.knownFailure);
    expect(limited.length).toBe(2); // simple/simple, for RSA and Ed25519
    for (const s of limited) {
      expect(s.verdicts![s.knownFailure as 'opendkim'], s.label).toEqual([false]);
      expect(s.verdicts!.dkimpy, s.label).toEqual([true]);
      expect(s.verdicts!.mailauth, s.label).toEqual([true]);
    }
  });

  it('dot-stuffed lines arrive unstuffed and signed as sent', () => {
    const dotted = sent.find((s) => s.label.startsWith('dot-stuffing: rsa-sha256 simple/simple'))!;
    expect(dotted.received!.toString()).toMatch(/\r\n\r\n\.\r\n\.\.\r\n\.leading dot\r\n\r\n\.\r\nend\r\n\.\r\n$/);
  });
});
