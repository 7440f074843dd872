// smtplib-email: messages that Python's email users recognise.
export { EmailMessage } from './message.js';
export type { Body, Content, ContentOptions, MessageOptions, SerializeOptions, SmtpRequirements } from './message.js';
export { parseMessage, ParseLimitError, MessageDefectError } from './parser.js';
export type { ParseOptions, MessagePath } from './parser.js';
export type { Region, FileRegion } from './content/parse-file.js';
export { Policy, policy } from './policy.js';
export type { PolicyOptions } from './policy.js';
export { Address, Group, formatAddress, parseAddressList, parseAddresses } from './headers/address.js';
export type { AddressInit } from './headers/address.js';
export { formatDate, parseDate } from './headers/date.js';
export type { FormatDateOptions } from './headers/date.js';
export { makeMsgid } from './msgid.js';
export { decodeEncodedWords, encodeWords } from './headers/encoded-words.js';
export { parseDeliveryStatus } from './dsn.js';
export type { DeliveryStatusReport, DsnRecipient, DsnAction } from './dsn.js';
export type { Defect, DefectKind } from './defects.js';
export type { BinarySourceInput, StreamFactory } from './content/sources.js';
export type { TransferEncoding } from './content/transfer-encoding.js';
export type { HeaderValue } from './headers/fields.js';
export {
  EmailError,
  HeaderInjectionError,
  InvalidHeaderNameError,
  LineTooLongError,
  PolicyError,
  AddressError,
  MessageStructureError,
  ContentUnavailableError,
} from './errors.js';

import { policy as policies } from './policy.js';
/** Python's email.policy.default, SMTP, SMTPUTF8 as named exports. */
export const { SMTP, SMTPUTF8 } = policies;
export const defaultPolicy = policies.default;
