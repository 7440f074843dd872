// The scenario language: a list of steps, each one public method call. The
// same list is run by our client (runOurs, below) and by CPython's smtplib
// (py/driver.py), so both get exactly the same inputs. Results are reduced
// to one JSON shape on both sides.

import { execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LMTP, Reply, SMTP, isSMTPError } from 'smtplib';

export type AuthObjectSpec = 'plain' | 'login' | 'cram-md5' | { initial: string | null; responses: string[] };

export type Step =
  | { op: 'open' }
  | { op: 'connect' }
  | { op: 'helo'; name?: string }
  | { op: 'ehlo'; name?: string }
  | { op: 'ehloOrHeloIfNeeded' }
  | { op: 'hasExtn'; name: string }
  | { op: 'state' }
  | { op: 'help'; args?: string }
  | { op: 'rset' }
  | { op: 'noop' }
  | { op: 'verify'; address: string }
  | { op: 'vrfy'; address: string }
  | { op: 'expn'; address: string }
  | { op: 'docmd'; cmd: string; args?: string }
  | { op: 'putcmd'; cmd: string; args?: string }
  | { op: 'send'; data: string }
  | { op: 'getreply' }
  | { op: 'mail'; from: string; options?: string[] }
  | { op: 'rcpt'; to: string; options?: string[] }
  | { op: 'data'; msg: string; binary?: boolean }
  | { op: 'login'; user: string; password: string }
  | { op: 'auth'; mechanism: string; object: AuthObjectSpec; initialResponseOk?: boolean; user?: string; password?: string }
  | { op: 'starttls' }
  | { op: 'sendmail'; from: string; to: string | string[]; msg: string; binary?: boolean; mailOptions?: string[]; rcptOptions?: string[] }
  | { op: 'sendMessage'; headers: [string, string][]; body: string; from?: string; to?: string[]; mailOptions?: string[]; rcptOptions?: string[] }
  | { op: 'quit' }
  | { op: 'close' };

export interface ReplyValue {
  code: number;
  message: string;
}

export type StepResult =
  | { ok: unknown }
  | { error: string; code?: number; message?: string; recipients?: Record<string, ReplyValue>; sender?: string; detail?: string };

export interface Job {
  client: 'SMTP' | 'LMTP';
  host: string;
  port: number;
  path: string | null;
  localHostname: string;
  caFile: string;
  ca: string;
  steps: Step[];
}

export interface RunOutput {
  results: StepResult[];
  /** Per sendMessage step index: the message bytes smtplib flattened (base64). */
  rendered: Record<string, string>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

let interpreter: string | undefined;

/** The interpreter behind `python3` on PATH (skips the start-up cost of shims such as pyenv's). */
export function pythonExecutable(): string {
  interpreter ??= execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() || 'python3';
  return interpreter;
}

/** Runs the steps with CPython's smtplib. */
export function runPython(job: Job): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(pythonExecutable(), [path.join(here, 'py', 'driver.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`python driver exited with ${code}:\n${err}`));
      try {
        resolve(JSON.parse(out) as RunOutput);
      } catch (error) {
        reject(new Error(`python driver printed no JSON (${(error as Error).message}):\n${out}\n${err}`));
      }
    });
    child.stdin.end(JSON.stringify(job));
  });
}

function replyValue(reply: Reply): ReplyValue {
  return { code: reply.code, message: reply.message };
}

function refusedValue(map: Iterable<[string, Reply]>): Record<string, ReplyValue> {
  const entries = [...map];
  return Object.fromEntries(entries.map(([addr, reply]) => [addr, replyValue(reply)]));
}

function errorValue(error: unknown): StepResult {
  if (!isSMTPError(error)) {
    return { error: `non-SMTP ${(error as Error)?.constructor?.name ?? typeof error}`, detail: String((error as Error)?.message ?? error) };
  }
  const e = error as unknown as Record<string, unknown>;
  const out: StepResult = { error: error.name, detail: error.message };
  if (typeof e['smtpCode'] === 'number') {
    out.code = e['smtpCode'] as number;
    out.message = e['smtpError'] as string;
  }
  if (typeof e['sender'] === 'string') out.sender = e['sender'] as string;
  if (e['recipients']) out.recipients = refusedValue(e['recipients'] as Iterable<[string, Reply]>);
  return out;
}

/** smtplib's built-in authobjects (auth_plain, auth_login, auth_cram_md5), as AuthObject callables. */
function authObject(spec: AuthObjectSpec, user: string, password: string): (challenge: Buffer | null) => string {
  if (spec === 'plain') return () => `\0${user}\0${password}`;
  if (spec === 'login') {
    // smtplib counts challenges: the initial response (or the first challenge) is the user.
    let count = 0;
    return (challenge) => {
      count++;
      return challenge === null || count < 2 ? user : password;
    };
  }
  if (spec === 'cram-md5') {
    // smtplib's auth_cram_md5 returns None for the initial call: no initial response.
    return ((challenge: Buffer | null) => {
      if (challenge === null) return null;
      return `${user} ${createHmac('md5', password).update(challenge).digest('hex')}`;
    }) as unknown as (challenge: Buffer | null) => string;
  }
  const responses = [...spec.responses];
  return ((challenge: Buffer | null) => (challenge === null ? spec.initial : responses.shift())) as unknown as (challenge: Buffer | null) => string;
}

/** Runs the steps with our client. `rendered` gives the message bytes for sendMessage steps. */
export async function runOurs(job: Job, rendered: Record<string, string>): Promise<StepResult[]> {
  const Client = job.client === 'LMTP' ? LMTP : SMTP;
  const options = {
    host: job.path ?? job.host,
    ...(job.path ? {} : { port: job.port }),
    localHostname: job.localHostname,
    timeout: 10_000,
  };
  let smtp: SMTP | undefined;
  const results: StepResult[] = [];
  for (const [index, step] of job.steps.entries()) {
    try {
      let result: unknown;
      switch (step.op) {
        case 'open':
          smtp = await Client.connect(options);
          result = null;
          break;
        case 'connect':
          smtp ??= new Client({ localHostname: job.localHostname, timeout: 10_000 });
          result = replyValue(job.path ? await smtp.connect(job.path) : await smtp.connect(job.host, job.port));
          break;
        case 'helo':
          result = replyValue(await smtp!.helo(step.name));
          break;
        case 'ehlo':
          result = replyValue(await smtp!.ehlo(step.name));
          break;
        case 'ehloOrHeloIfNeeded':
          result = (await smtp!.ehloOrHeloIfNeeded()) ?? null;
          break;
        case 'hasExtn':
          result = smtp!.hasExtn(step.name);
          break;
        case 'state':
          result = {
            esmtpFeatures: Object.fromEntries(smtp!.esmtpFeatures),
            doesEsmtp: smtp!.doesEsmtp,
            ehloResp: smtp!.ehloResp,
            heloResp: smtp!.heloResp,
          };
          break;
        case 'help':
          result = await smtp!.help(step.args);
          break;
        case 'rset':
          result = replyValue(await smtp!.rset());
          break;
        case 'noop':
          result = replyValue(await smtp!.noop());
          break;
        case 'verify':
          result = replyValue(await smtp!.verify(step.address));
          break;
        case 'vrfy':
          result = replyValue(await smtp!.vrfy(step.address));
          break;
        case 'expn':
          result = replyValue(await smtp!.expn(step.address));
          break;
        case 'docmd':
          result = replyValue(await smtp!.docmd(step.cmd, step.args));
          break;
        case 'putcmd':
          result = (await smtp!.putcmd(step.cmd, step.args)) ?? null;
          break;
        case 'send':
          result = (await smtp!.send(step.data)) ?? null;
          break;
        case 'getreply':
          result = replyValue(await smtp!.getreply());
          break;
        case 'mail':
          result = replyValue(await smtp!.mail(step.from, step.options ?? []));
          break;
        case 'rcpt':
          result = replyValue(await smtp!.rcpt(step.to, step.options ?? []));
          break;
        case 'data':
          result = replyValue(await smtp!.data(step.binary ? Buffer.from(step.msg, 'utf8') : step.msg));
          break;
        case 'login':
          result = replyValue(await smtp!.login(step.user, step.password));
          break;
        case 'auth':
          result = replyValue(
            await smtp!.auth(step.mechanism, authObject(step.object, step.user ?? 'bob', step.password ?? 'secret'), {
              initialResponseOk: step.initialResponseOk ?? true,
            }),
          );
          break;
        case 'starttls':
          result = replyValue(await smtp!.starttls({ ca: job.ca }));
          break;
        case 'sendmail':
          result = refusedValue(
            await smtp!.sendmail(step.from, step.to, step.binary ? Buffer.from(step.msg, 'utf8') : step.msg, step.mailOptions ?? [], step.rcptOptions ?? []),
          );
          break;
        case 'sendMessage': {
          const bytes = rendered[String(index)];
          if (bytes === undefined) throw new Error(`no rendered message for step ${index} (the Python run did not reach it)`);
          result = refusedValue(
            await smtp!.sendMessage(Buffer.from(bytes, 'base64'), {
              ...(step.from ? { from: step.from } : {}),
              ...(step.to ? { to: step.to } : {}),
              mailOptions: step.mailOptions ?? [],
              rcptOptions: step.rcptOptions ?? [],
            }),
          );
          break;
        }
        case 'quit':
          result = replyValue(await smtp!.quit());
          break;
        case 'close':
          smtp!.close();
          result = null;
          break;
      }
      results.push({ ok: result });
    } catch (error) {
      results.push(errorValue(error));
    }
  }
  smtp?.close();
  return results;
}
