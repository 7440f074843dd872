// startCapture: the SMTP side, the store and the HTTP side wired together.
import { MessageStore, type Persistence } from './store.js';
import { describeMessage } from './message.js';
import { startSmtpCapture, type SmtpCapture, type SmtpCaptureOptions } from './smtp.js';
import { startHttpApi, type HttpApi, type HttpOptions } from './http.js';
import type { FailureScript } from './failures.js';

export interface CaptureOptions extends SmtpCaptureOptions {
  /** Messages kept in memory; the oldest is dropped beyond it (default 1000). */
  maxMessages?: number;
  /** Persist into (and reload from) this Maildir. */
  maildir?: string;
  /** Persist as (and reload) DIR/*.eml files. */
  emlDir?: string;
  /** The web inbox and API; `false` for none. Default 127.0.0.1:8025. */
  http?: HttpOptions | false;
}

export interface CaptureServer {
  readonly store: MessageStore;
  readonly smtp: SmtpCapture;
  readonly http: HttpApi | undefined;
  readonly failures: FailureScript;
  /** Messages read back from --maildir / --eml at start. */
  readonly reloaded: number;
  close(): Promise<void>;
}

export async function startCapture(options: CaptureOptions = {}): Promise<CaptureServer> {
  const persist: Persistence[] = [];
  if (options.maildir) persist.push({ kind: 'maildir', dir: options.maildir });
  if (options.emlDir) persist.push({ kind: 'eml', dir: options.emlDir });
  const store = new MessageStore({ ...(options.maxMessages ? { maxMessages: options.maxMessages } : {}), persist });
  const reloaded = persist.length ? await store.load((raw, meta) => describeMessage(raw, meta)) : 0;
  const smtp = await startSmtpCapture(store, options);
  let http: HttpApi | undefined;
  try {
    if (options.http !== false) http = await startHttpApi({ store, failures: smtp.failures, smtp: { host: smtp.host, port: smtp.port } }, options.http ?? {});
  } catch (err) {
    await smtp.close();
    throw err;
  }
  return {
    store,
    smtp,
    http,
    failures: smtp.failures,
    reloaded,
    close: async () => {
      await http?.close();
      await smtp.close();
    },
  };
}
