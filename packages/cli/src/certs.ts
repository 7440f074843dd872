// Throw-away certificates for the debugging server, and certificate helpers
// shared by `serve` and `probe`.
import { X509Certificate } from 'node:crypto';
import selfsigned from 'selfsigned';

export interface GeneratedCertificate {
  /** PEM certificate */
  cert: string;
  /** PEM private key */
  key: string;
  /** SHA-256 fingerprint, colon separated upper-case hex (as openssl prints it) */
  fingerprint256: string;
}

/**
 * Generates a self-signed certificate valid for `names` (DNS names and IP
 * addresses) for a day. Used by `smtplib serve --starttls` when no certificate
 * is given. Valid for 30 days unless `days` says otherwise.
 */
export async function generateSelfSigned(
  names: string[] = ['localhost', '127.0.0.1', '::1'],
  options: { days?: number; ca?: { cert: string; key: string }; isCA?: boolean } = {},
): Promise<GeneratedCertificate> {
  const dns = names.filter((n) => !isIp(n));
  const ips = names.filter(isIp);
  const commonName = options.isCA ? 'smtplib throw-away CA' : (dns[0] ?? ips[0] ?? 'localhost');
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + (options.days ?? 30) * 86_400_000);
  const extensions: NonNullable<Parameters<typeof selfsigned.generate>[1]>['extensions'] = options.isCA
    ? [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ]
    : [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            ...dns.map((value) => ({ type: 2 as const, value })),
            ...ips.map((ip) => ({ type: 7 as const, ip })),
          ],
        },
      ];
  const pems = await selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions,
    ...(options.ca ? { ca: options.ca } : {}),
  });
  return { cert: pems.cert, key: pems.private, fingerprint256: new X509Certificate(pems.cert).fingerprint256 };
}

export function isIp(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(':');
}

export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}
