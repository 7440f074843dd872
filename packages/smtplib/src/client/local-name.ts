// Names for the local end: what EHLO says by default, and whether a host is
// this machine (which decides the default TLS policy).

import net from 'node:net';
import os from 'node:os';
import { isLoopbackAddress } from '../wire/connect.js';

/** "localhost", "*.localhost" (RFC 6761) or a loopback address. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || isLoopbackAddress(host);
}

/**
 * RFC 5321 §4.1.4: the client's FQDN, or, when it has none, an address
 * literal of the address the connection was made from.
 */
export function defaultLocalHostname(localAddress: string | undefined): string {
  const name = os.hostname();
  if (name.includes('.') && /^[A-Za-z0-9.-]+$/.test(name)) return name;
  if (localAddress && net.isIPv4(localAddress)) return `[${localAddress}]`;
  if (localAddress?.startsWith('::ffff:') && net.isIPv4(localAddress.slice(7))) return `[${localAddress.slice(7)}]`;
  if (localAddress && net.isIPv6(localAddress)) return `[IPv6:${localAddress}]`;
  return '[127.0.0.1]';
}
