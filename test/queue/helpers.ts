// What the queue tests share: a fault-injecting SMTP server that counts
// deliveries per message and recipient, and a message that carries its tag.
// @ts-expect-error plain JS module without types
import { startFaultServer } from '../soak/fault-server.js';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';

export interface FaultContext {
  connection: { id: number };
  step: number;
  stage: 'greeting' | 'command' | 'data' | 'end-of-data';
  verb: string;
  line: string;
  rcpts: string[];
}

export interface FaultServer {
  port: number;
  /** `${tag} ${rcpt}` → times delivered */
  deliveries: Map<string, number>;
  stats: { connections: number; messages: number; drops: number; faults: number };
  close(): Promise<void>;
}

export function startServer(options: {
  fault?: (ctx: FaultContext) => { reply?: string; drop?: true | 'after-delivery' } | undefined;
  rcptReply?: (rcpt: string) => string | undefined;
  replyDelayMs?: number;
} = {}): Promise<FaultServer> {
  return startFaultServer(options);
}

let counter = 0;
export function taggedMessage(tag = `m${++counter}`): { tag: string; message: string } {
  return { tag, message: `From: a@example.test\r\nTo: b@example.test\r\nSubject: queued ${tag}\r\nX-Soak-Id: ${tag}\r\n\r\nbody of ${tag}\r\n` };
}

/** Runs test/queue/crash-child.mjs, which claims a message (and maybe marks it, and notes it writing) and SIGKILLs itself; resolves with the id it printed. */
export function crashChild(spec: string, mode: 'claim' | 'claim-mark' | 'claim-mark-write'): Promise<string> {
  const script = fileURLToPath(new URL('./crash-child.mjs', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, spec, mode], (error, stdout, stderr) => {
      const id = stdout.trim();
      if (error && (error as { signal?: string }).signal === 'SIGKILL' && id) resolve(id);
      else reject(new Error(`crash child did not die as planned: ${error?.message ?? 'exit 0'} ${stderr}`));
    });
  });
}

/** Fast retries for tests (the Postfix defaults would wait 300 s). */
export const FAST = { minBackoffMs: 20, maxBackoffMs: 100, greylistDelayMs: 20 };

/** Counts opendirSync calls on `path` (the spool's scanDir opens queue/ with it once per pass); undone by vi.restoreAllMocks(). */
export function countScans(path: string): { readonly count: number } {
  const original = fs.opendirSync;
  const counter = { count: 0 };
  vi.spyOn(fs, 'opendirSync').mockImplementation(((dirPath: fs.PathLike, options?: fs.OpenDirOptions) => {
    if (String(dirPath) === path) counter.count++;
    return original(dirPath, options);
  }) as typeof fs.opendirSync);
  return counter;
}
