// Message-ID values (RFC 5322 §3.6.4): Python's email.utils.make_msgid.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * `<time.pid.random[.idstring]@domain>`: unique without coordination.
 * `domain` defaults to this host's name (pass your sending domain).
 */
export function makeMsgid(idstring?: string, domain?: string): string {
  const host = (domain ?? hostname()) || 'localhost';
  const random = BigInt('0x' + randomBytes(8).toString('hex')).toString();
  const suffix = idstring ? `.${idstring}` : '';
  const id = `<${Math.floor(Date.now() / 10)}.${process.pid}.${random}${suffix}@${host}>`;
  // eslint-disable-next-line no-control-regex
  if (/[\s<>\x00-\x1f]/.test(id.slice(1, -1))) throw new TypeError('makeMsgid: idstring and domain may not contain spaces, angle brackets or control characters');
  return id;
}
