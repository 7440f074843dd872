// Mechanism names, construction by name, and automatic selection.
//
// Selection policy (see docs/security research D1, D4, D11, D12):
//   * strongest first: SCRAM with channel binding, SCRAM, then the bearer
//     token mechanisms, then PLAIN, then LOGIN;
//   * cleartext mechanisms only when the caller says they are allowed
//     (TLS up, loopback peer, or explicit opt-in);
//   * -PLUS only when channel binding can be had on this connection;
//   * CRAM-MD5 (LIMITED in the IANA SASL registry, breaks on FIPS builds)
//     and EXTERNAL (needs a client certificate) only when named by the caller.

import { hasPassword, hasToken } from './common.js';
import { cramMd5Mechanism } from './cram-md5.js';
import { externalMechanism } from './external.js';
import { loginMechanism } from './login.js';
import type { Credentials, SaslMechanism } from './mechanism.js';
import { oauthBearerMechanism } from './oauthbearer.js';
import { plainMechanism } from './plain.js';
import { scramMechanism, type ScramOptions } from './scram.js';
import { xoauth2Mechanism } from './xoauth2.js';

export type MechanismName =
  | 'PLAIN'
  | 'LOGIN'
  | 'CRAM-MD5'
  | 'XOAUTH2'
  | 'OAUTHBEARER'
  | 'SCRAM-SHA-1'
  | 'SCRAM-SHA-256'
  | 'SCRAM-SHA-1-PLUS'
  | 'SCRAM-SHA-256-PLUS'
  | 'EXTERNAL';

/** Strongest first. CRAM-MD5 and EXTERNAL are not in it (opt-in by name only). */
export const DEFAULT_MECHANISM_PREFERENCE: readonly MechanismName[] = Object.freeze([
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-256',
  'SCRAM-SHA-1',
  'OAUTHBEARER',
  'XOAUTH2',
  'PLAIN',
  'LOGIN',
] as const);

interface Info {
  /** Same as the mechanism's `sendsCleartext`. */
  readonly cleartext: boolean;
  /** -PLUS: needs channel binding. */
  readonly plus: boolean;
  readonly fits: (c: Credentials) => boolean;
  readonly make: (c: Credentials, o: ScramOptions | undefined) => SaslMechanism;
}

const hasUser = (c: Credentials): boolean => typeof c.user === 'string' && c.user.length > 0;
const passwordFits = (c: Credentials): boolean => hasUser(c) && hasPassword(c);

const MECHANISMS: Readonly<Record<MechanismName, Info>> = Object.freeze({
  PLAIN: { cleartext: true, plus: false, fits: passwordFits, make: (c) => plainMechanism(c) },
  LOGIN: { cleartext: true, plus: false, fits: passwordFits, make: (c) => loginMechanism(c) },
  'CRAM-MD5': { cleartext: false, plus: false, fits: passwordFits, make: (c) => cramMd5Mechanism(c) },
  // XOAUTH2 always names the user ("user=" field); OAUTHBEARER's authzid is optional.
  XOAUTH2: { cleartext: true, plus: false, fits: (c) => hasUser(c) && hasToken(c), make: (c) => xoauth2Mechanism(c) },
  OAUTHBEARER: { cleartext: true, plus: false, fits: (c) => hasToken(c), make: (c) => oauthBearerMechanism(c) },
  'SCRAM-SHA-1': { cleartext: false, plus: false, fits: passwordFits, make: (c, o) => scramMechanism('SCRAM-SHA-1', c, o) },
  'SCRAM-SHA-256': { cleartext: false, plus: false, fits: passwordFits, make: (c, o) => scramMechanism('SCRAM-SHA-256', c, o) },
  'SCRAM-SHA-1-PLUS': { cleartext: false, plus: true, fits: passwordFits, make: (c, o) => scramMechanism('SCRAM-SHA-1-PLUS', c, o) },
  'SCRAM-SHA-256-PLUS': { cleartext: false, plus: true, fits: passwordFits, make: (c, o) => scramMechanism('SCRAM-SHA-256-PLUS', c, o) },
  EXTERNAL: { cleartext: false, plus: false, fits: () => true, make: (c) => externalMechanism(c) },
});

function lookup(name: string): [MechanismName, Info] | undefined {
  const upper = name.toUpperCase();
  return Object.hasOwn(MECHANISMS, upper) ? [upper as MechanismName, MECHANISMS[upper as MechanismName]] : undefined;
}

/** True when `name` is a mechanism this module implements (case-insensitive). */
export function isKnownMechanism(name: string): name is MechanismName {
  return lookup(name) !== undefined;
}

/**
 * A fresh mechanism for this name and these credentials, or undefined if the
 * name is unknown or the credentials do not fit (e.g. XOAUTH2 without a token,
 * SCRAM without a password). Case-insensitive name.
 *
 * `options` only matters for SCRAM (iteration limits, and `advertised`, the
 * server's AUTH list, which lets non-PLUS SCRAM send the "y" GS2 flag).
 */
export function createMechanism(name: string, credentials: Credentials, options?: ScramOptions): SaslMechanism | undefined {
  const found = lookup(name);
  if (!found || credentials == null) return undefined;
  const [, info] = found;
  return info.fits(credentials) ? info.make(credentials, options) : undefined;
}

export interface ChooseOptions {
  credentials: Credentials;
  /** Caller's order; defaults to DEFAULT_MECHANISM_PREFERENCE filtered by what the credentials allow (token → OAUTHBEARER, XOAUTH2; password → SCRAM*, PLAIN, LOGIN). */
  preference?: readonly string[];
  /** Channel binding can be obtained on this connection (TLS is up). */
  channelBindingAvailable: boolean;
  /** Cleartext mechanisms may be used (TLS up, loopback peer, or caller opt-in). */
  cleartextAllowed: boolean;
}

/**
 * The first mechanism in preference order that the server advertised and the
 * options allow; undefined if none.
 *
 * Known names are filtered by credentials, cleartext policy and channel
 * binding, and returned in their canonical upper-case spelling. A name this
 * module does not know (a caller's custom mechanism) is returned as written
 * when the server advertised it: the caller supplies its factory, and the
 * client still checks that mechanism's `sendsCleartext` before using it.
 */
export function chooseMechanism(advertised: readonly string[], options: ChooseOptions): MechanismName | string | undefined {
  const offered = new Set(advertised.map((m) => m.toUpperCase()));
  const preference = options.preference ?? DEFAULT_MECHANISM_PREFERENCE;
  for (const name of preference) {
    if (!offered.has(name.toUpperCase())) continue;
    const found = lookup(name);
    if (!found) return name;
    const [canonical, info] = found;
    if (!info.fits(options.credentials)) continue;
    if (info.cleartext && !options.cleartextAllowed) continue;
    if (info.plus && !options.channelBindingAvailable) continue;
    return canonical;
  }
  return undefined;
}
