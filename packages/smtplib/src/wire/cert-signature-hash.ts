// The hash of a certificate's own signature algorithm, for the
// tls-server-end-point channel binding (RFC 5929 §4.1): hash the server
// certificate with that hash, except MD5 and SHA-1, which become SHA-256.
// Node 20 does not expose the signature algorithm, so the OID is read from
// the DER: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, ... }.

const SHA256 = 'sha256';

/** Signature algorithm OIDs → the hash they use (null: none defined, e.g. EdDSA). */
const BY_OID: Record<string, string | null> = {
  '1.2.840.113549.1.1.4': SHA256, // md5WithRSAEncryption → SHA-256 (RFC 5929 §4.1)
  '1.2.840.113549.1.1.5': SHA256, // sha1WithRSAEncryption → SHA-256
  '1.2.840.10045.4.1': SHA256, // ecdsa-with-SHA1 → SHA-256
  '1.2.840.10040.4.3': SHA256, // dsa-with-sha1 → SHA-256
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '2.16.840.1.101.3.4.3.2': 'sha256', // dsa-with-sha256
  '1.3.101.112': null, // Ed25519: no separate hash; the binding is undefined
  '1.3.101.113': null, // Ed448
};

const PSS = '1.2.840.113549.1.1.10';
const HASH_OIDS: Record<string, string> = {
  '1.3.14.3.2.26': SHA256, // sha1 → SHA-256
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
};

interface Tlv {
  tag: number;
  start: number;
  end: number;
  next: number;
}

function readTlv(der: Uint8Array, at: number): Tlv {
  const tag = der[at]!;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  if (start + length > der.length) throw new Error('truncated DER');
  return { tag, start, end: start + length, next: start + length };
}

function oid(der: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== 0x06) throw new Error('expected an OID');
  const parts: number[] = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    value = value * 128 + (der[i]! & 0x7f);
    if (!(der[i]! & 0x80)) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/**
 * The hash algorithm (a node:crypto name) for tls-server-end-point over a
 * certificate in DER, or undefined when the binding is not defined for it
 * (EdDSA, an unknown algorithm, a certificate that does not parse).
 */
export function endPointHashOf(der: Uint8Array): string | undefined {
  try {
    const certificate = readTlv(der, 0);
    const tbs = readTlv(der, certificate.start);
    const algorithm = readTlv(der, tbs.next);
    const algorithmOid = oid(der, readTlv(der, algorithm.start));
    if (algorithmOid === PSS) {
      // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ... }
      const identifier = readTlv(der, algorithm.start);
      if (identifier.next >= algorithm.end) return SHA256;
      const params = readTlv(der, identifier.next);
      if (params.start >= params.end) return SHA256;
      const first = readTlv(der, params.start);
      if (first.tag !== 0xa0) return SHA256;
      const hashAlgorithm = readTlv(der, first.start);
      return HASH_OIDS[oid(der, readTlv(der, hashAlgorithm.start))];
    }
    const hash = BY_OID[algorithmOid];
    return hash === null ? undefined : hash;
  } catch {
    return undefined;
  }
}
