// Which SASL mechanism a login uses, and smtplib's "authobject" callables
// adapted to the mechanism interface. The wire exchange is in authenticate.ts.

import { chooseMechanism, createMechanism } from '../auth/registry.js';
import type { Credentials, SaslMechanism, SaslMechanismFactory } from '../auth/mechanism.js';
import { SMTPInvalidArgumentError, SMTPNotSupportedError } from '../errors.js';
import { assertSafeArgument } from '../protocol/commands.js';
import type { Session } from '../session/session.js';
import { assertMechanismAllowed, cleartextAllowed, CLEARTEXT_MECHANISMS } from './authenticate.js';

/** smtplib's authobject: called with the decoded challenge (null first, for the initial response). */
export type AuthObject = (
  challenge: Buffer | null,
) => string | Uint8Array | null | undefined | Promise<string | Uint8Array | null | undefined>;

export interface LoginSelection {
  advertised: string[];
  credentials: Credentials;
  options: { mechanism?: string; mechanisms?: readonly string[] };
  session: Session;
  host: string;
  allowCleartextAuth: boolean;
}

/**
 * The mechanism for login(): the one named, if the server offers it, else the
 * strongest both sides support that the connection allows. Throws
 * SMTPNotSupportedError (nothing written) when there is none.
 */
export function selectLoginMechanism(selection: LoginSelection): SaslMechanism {
  const { advertised, credentials, options, session } = selection;
  const transport = session.transport;
  const cleartextOk = cleartextAllowed(session, selection.allowCleartextAuth);
  let name: string | undefined;
  if (options.mechanism) {
    name = options.mechanism.toUpperCase();
    if (!advertised.includes(name)) {
      throw new SMTPNotSupportedError(`the server does not offer AUTH ${name} (it offers: ${advertised.join(' ') || 'nothing'})`);
    }
  } else {
    name = chooseMechanism(advertised, {
      credentials,
      ...(options.mechanisms ? { preference: options.mechanisms } : {}),
      channelBindingAvailable: transport.secure,
      cleartextAllowed: cleartextOk,
    });
  }
  if (!name) {
    const cleartext = advertised.find((m) => CLEARTEXT_MECHANISMS.has(m));
    // The usual reason there is none: only cleartext mechanisms, on a link that must not carry them.
    if (cleartext && !cleartextOk) assertMechanismAllowed(cleartext, true, session, selection.host, false);
    throw new SMTPNotSupportedError(`no suitable authentication method found (the server offers: ${advertised.join(' ') || 'nothing'})`, {
      diagnosis: 'no-suitable-mechanism',
    });
  }
  const mechanism = createMechanism(name, credentials, { advertised });
  if (!mechanism) throw new SMTPNotSupportedError(`AUTH ${name} is not supported by this client for these credentials`);
  return mechanism;
}

/**
 * auth()'s `authobject` as a mechanism: a SaslMechanism as is, a factory
 * (a function of no arguments returning one), or smtplib's callable.
 */
export function toMechanism(name: string, authobject: SaslMechanism | SaslMechanismFactory | AuthObject, initialResponseOk = true): SaslMechanism {
  assertSafeArgument(name, 'AUTH mechanism');
  if (!/^[A-Za-z0-9_-]{1,20}$/.test(name)) throw new SMTPInvalidArgumentError(`${JSON.stringify(name)} is not a SASL mechanism name`);
  const upper = name.toUpperCase();
  if (typeof authobject === 'object' && authobject && 'step' in authobject) return authobject;
  if (typeof authobject === 'function' && authobject.length === 0) {
    // A function that declares no parameter is taken for a factory first.
    const made = (authobject as SaslMechanismFactory)();
    if (made && typeof made === 'object' && 'step' in made) return made;
  }
  const callback = authobject as AuthObject;
  const toBytes = (value: string | Uint8Array) => (typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
  return {
    name: upper,
    sendsCleartext: CLEARTEXT_MECHANISMS.has(upper),
    async start() {
      // smtplib: with initial_response_ok false the callable is not called
      // with None first; a None (null/undefined) result means "no initial
      // response" (e.g. auth_cram_md5), and the first challenge is awaited.
      if (!initialResponseOk) return undefined;
      const initial = await callback(null);
      return initial == null ? undefined : toBytes(initial);
    },
    async step(challenge: Uint8Array) {
      const response = await callback(Buffer.from(challenge));
      if (response == null) throw new Error('the authobject returned no response to a challenge');
      return toBytes(response);
    },
    toJSON: () => ({ mechanism: upper }),
  } as SaslMechanism;
}
