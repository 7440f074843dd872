// googleServiceAccountProvider: the JWT bearer grant (RFC 7523 §2.1) as
// Google's token endpoint receives it. Google cannot run here, so the test's
// endpoint does what Google documents: verify the RS256 signature with the
// service account's public key, check iss, aud, scope, sub and the times, and
// refuse a mailbox outside the domain-wide delegation (unauthorized_client).

import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { googleServiceAccountProvider, OAuthError } from 'smtplib';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const EMAIL = 'mailer@project.iam.gserviceaccount.test';
const DELEGATED = new Set(['ann@corp.example.test']);
let server: Server;
let tokenUri: string;
const assertions: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      try {
        handle();
      } catch (error) {
        res.writeHead(500).end(String(error));
      }
    });
    const handle = () => {
      const form = new URLSearchParams(body);
      const reply = (status: number, json: object) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return reply(400, { error: 'unsupported_grant_type' });
      const [head, claims, signature] = (form.get('assertion') ?? '').split('.');
      const header = JSON.parse(Buffer.from(head!, 'base64url').toString());
      const ok = header.alg === 'RS256' && verify('sha256', Buffer.from(`${head}.${claims}`), publicKey, Buffer.from(signature!, 'base64url'));
      if (!ok) return reply(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
      const c = JSON.parse(Buffer.from(claims!, 'base64url').toString());
      assertions.push({ header, ...c });
      const now = Date.now() / 1000;
      if (c.iss !== EMAIL || c.aud !== tokenUri || !(c.exp > now && c.exp - c.iat <= 3600)) return reply(400, { error: 'invalid_grant', error_description: 'Invalid JWT claims.' });
      if (!DELEGATED.has(c.sub)) return reply(401, { error: 'unauthorized_client', error_description: 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.' });
      reply(200, { access_token: `ya29.for-${c.sub}-${assertions.length}`, expires_in: 3599, token_type: 'Bearer' });
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  tokenUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function keyFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sa-')), 'key.json');
  writeFileSync(file, JSON.stringify({ type: 'service_account', client_email: EMAIL, private_key: privatePem, private_key_id: 'k1', token_uri: tokenUri }));
  return file;
}

test('signs a JWT Google accepts (iss, sub, scope, aud, ≤ 1 h) and caches the token', async () => {
  const provider = googleServiceAccountProvider({ keyFile: keyFile(), subject: 'ann@corp.example.test' });
  const token = await provider.getToken();
  expect(token).toMatch(/^ya29\.for-ann@corp\.example\.test-\d+$/);
  expect(await provider.getToken()).toBe(token);
  expect(assertions.at(-1)).toMatchObject({ header: { alg: 'RS256', typ: 'JWT', kid: 'k1' }, iss: EMAIL, sub: 'ann@corp.example.test', scope: 'https://mail.google.com/', aud: tokenUri });
  expect(inspect(provider)).toBe('TokenProvider(google-service-account)');
  expect(JSON.stringify(provider)).not.toContain('PRIVATE KEY');
});

test('a mailbox outside the delegation: unauthorized_client, with what to do in the Admin console', async () => {
  const error = await googleServiceAccountProvider({ keyFile: keyFile(), subject: 'bob@elsewhere.example.test' }).getToken().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OAuthError);
  expect(error).toMatchObject({ kind: 'client', error: 'unauthorized_client' });
  expect((error as Error).message).toMatch(/may not act for bob@elsewhere\.example\.test .*domain-wide delegation in the Google Admin console/);
});

test('a file that is not a service account key is a configuration error', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'sa-')), 'key.json');
  writeFileSync(file, '{"installed":{}}');
  expect(() => googleServiceAccountProvider({ keyFile: file })).toThrow(/is not a service account key/);
});
