// SASL mechanisms for SMTP AUTH (RFC 4954): pure state machines, no I/O.

export type { Credentials, SaslContext, SaslMechanism, SaslMechanismFactory } from './mechanism.js';
export { SaslMechanismError } from './common.js';
export { saslprep } from './saslprep.js';
export { plainMechanism } from './plain.js';
export { loginMechanism } from './login.js';
export { cramMd5Mechanism } from './cram-md5.js';
export { xoauth2Mechanism } from './xoauth2.js';
export { oauthBearerMechanism } from './oauthbearer.js';
export { externalMechanism } from './external.js';
export {
  scramMechanism,
  SCRAM_DEFAULT_MAX_ITERATIONS,
  SCRAM_DEFAULT_MIN_ITERATIONS,
  type ChannelBindingType,
  type ScramMechanismName,
  type ScramOptions,
} from './scram.js';
export {
  chooseMechanism,
  createMechanism,
  DEFAULT_MECHANISM_PREFERENCE,
  isKnownMechanism,
  type ChooseOptions,
  type MechanismName,
} from './registry.js';
