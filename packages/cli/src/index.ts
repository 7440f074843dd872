// Programmatic entry of smtplib-cli: the debugging server and the helpers
// the commands are built from. The commands themselves live in bin.js.
export { startDebugServer, formatMessage, messageToJson, type DebugServer, type DebugServerOptions, type ReceivedMessage, type ScriptedReply } from './serve.js';
export { generateSelfSigned, type GeneratedCertificate } from './certs.js';
export { parseConfig, loadConfig, chooseAccount, configPath, type Account, type Config, type TlsMode } from './config.js';
export { probe, formatReport, type ProbeReport } from './commands/probe.js';
export { EX, CliError } from './exit-codes.js';
