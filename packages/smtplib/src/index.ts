// Public exports of `smtplib`. No logic lives here.

export { SMTP, type LoginOptions, type SendOptions, type SendMessageOptions, type AuthObject } from './client/smtp.js';
export { type CallOptions, type SendmailCallOptions } from './client/call-options.js';
export { envelopeFromHeaders, removeBccHeaders, type EnvelopeOptions, type HeaderEnvelope } from './message/headers.js';
export { maskSecret } from './protocol/commands.js';
export { SMTP_SSL } from './client/smtp-ssl.js';
export { LMTP } from './client/lmtp.js';
export {
  SMTP_PORT,
  SMTP_SSL_PORT,
  LMTP_PORT,
  SUBMISSION_PORT,
  DEFAULT_TIMEOUTS,
  splitHostPort,
  type SMTPOptions,
  type TlsPolicy,
  type Timeouts,
} from './client/options.js';
export { RefusedRecipients } from './protocol/refused-recipients.js';
export type { DeliveryResult } from './client/transaction.js';
export type { MessageInput } from './message/source.js';
export { quoteaddr, parseaddr, getaddresses, type ParsedAddress } from './protocol/address.js';
export { quotedata, DataEncoder, decodeData, type EncoderMode } from './protocol/data-encoder.js';
export { Reply } from './protocol/reply.js';
export { ReplyParser, DEFAULT_REPLY_LIMITS, type ReplyLimits } from './protocol/reply-parser.js';
export { Capabilities } from './protocol/capabilities.js';
export { encodeXtext, decodeXtext, type MailOptions, type RcptOptions, type BodyType, type NotifyType } from './protocol/params.js';
export { parseEnhancedStatus } from './protocol/enhanced-status.js';
export { StatusCatalogue, statusCatalogue, classifyReply, STATUS_RULES, type StatusKind, type StatusRule, type StatusVerdict, type ReplyLike } from './protocol/status-catalogue.js';
export * from './auth/index.js';
export {
  SMTPException,
  SMTPError,
  SMTPServerDisconnected,
  SMTPResponseException,
  SMTPSenderRefused,
  SMTPRecipientsRefused,
  SMTPDataError,
  SMTPConnectError,
  SMTPHeloError,
  SMTPAuthenticationError,
  SMTPNotSupportedError,
  SMTPTimeoutError,
  SMTPTLSError,
  SMTPProtocolError,
  SMTPAbortError,
  SMTPInvalidArgumentError,
  isSMTPError,
  type DeliveryStatus,
  type Diagnosis,
  type TimeoutPhase,
} from './errors.js';
export { SMTPPool, type SMTPPoolOptions, type PoolSendOptions, type PoolSendMessageOptions, type PoolSendResult, type PoolTimings, type PoolStats, type PoolConnectEvent, type PoolDisconnectEvent, type PoolMessageEvent, type SMTPPoolEvents, type DisconnectReason, type PoolMessage } from './pool/pool.js';
export { SMTPPoolError, type SMTPPoolErrorCode } from './pool/errors.js';
export { RateLimiter, type RateLimit } from './pool/rate-limiter.js';
export { classify as classifyRetry, backoffDelay, type RetryOptions, type RetryVerdict } from './pool/retry-policy.js';
export type { PoolAuth } from './pool/pool-connection.js';
export { channels as diagnosticsChannels, CONNECT_CHANNEL, COMMAND_CHANNEL, REPLY_CHANNEL, SEND_CHANNEL, ERROR_CHANNEL, AUTH_CHANNEL, CLOSE_CHANNEL, type ConnectEvent, type CommandEvent, type ReplyEvent, type SendEvent, type ErrorEvent, type AuthEvent, type CloseEvent, type TlsDetails } from './diagnostics.js';
export * from './oauth/index.js';
export { DkimSigner, dkimDnsRecord, DKIM_SPOOL_THRESHOLD, DEFAULT_SIGNED_HEADERS, OVERSIGNED_HEADERS, type DkimOptions, type DkimOption, type DkimAlgorithm, type DkimCanonicalization } from './dkim/index.js';
export type { MessageFile, SerializableMessage, SmtpRequirements } from './message/source.js';
