// smtplib-capture: a mail capture server for testing apps that send mail.
export { startCapture, type CaptureOptions, type CaptureServer } from './capture.js';
export { startSmtpCapture, type SmtpCapture, type SmtpCaptureOptions, type CaptureAccount } from './smtp.js';
export { startHttpApi, summaryOf, detailOf, type HttpApi, type HttpOptions } from './http.js';
export { MessageStore, DEFAULT_MAX_MESSAGES, type CapturedMessage, type StoredMessage, type EnvelopeAddress, type Persistence } from './store.js';
export { FailureScript, FailureSyntaxError, parseFailureRule, type FailureRule, type Outcome, type Phase } from './failures.js';
export { parseMail, gistOf, type ParsedMail, type ParsedAttachment, type MimeNode } from './parse.js';
export { parseQuery, matches, type MessageFilter } from './query.js';
export { formatTranscript, expandTranscript, debugLogToScript, parseTranscriptText, clientLineMatches, REDACTED, type TranscriptLine, type ParsedTranscript, type ReplayStep } from './transcript.js';
export { startReplay, ReplayMismatchError, type ReplayServer, type ReplayOptions } from './replay.js';
