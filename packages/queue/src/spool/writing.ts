// Which marked attempts reached the write of their end of data.
//
// An attempt's durable mark (commit/<id>@<n>, fsync'd) is made before the message is handed to the
// pool, for every message handed off in one turn: up to markAhead of them, all that a worker claimed
// by default. A worker killed then leaves every marked message `unknown`, though most of them were
// still waiting in the pool and never sent. This file tells them apart after a process crash: the
// pool calls the worker back synchronously just before the write that carries a message's end of
// data (smtplib's beforeCommitSync), and the worker notes `<id>@<n>` here first. An attempt whose
// note is missing never began that write, so it certainly was not delivered.
//
// The note is a write to the page cache, never fsync'd: it costs a few microseconds, no directory
// operation and no disk wait. So it survives what the kernel survives - a SIGKILL, an OOM kill, a
// crash of the process - and not a power loss or a reboot. Recovery trusts it only when the worker
// promised a note before every end of data (registered with `writingNotes`: its worker file says
// `notes`, and its empty file was made before that file was published) and its process ended while
// this machine kept running: the same boot (/proc/sys/kernel/random/boot_id), the same pid
// namespace, and its pid gone (or reused: another start time). Otherwise (a worker that never
// promised, such as a store's control worker holding claims it took from a dead one; a file gone
// or unreadable) every marked attempt stays `unknown`, as without the file.
//
// Layout: active/<worker>/writing, slots of SLOT bytes, one per attempt under way ("<id>@<n>",
// padded with spaces, ending in a newline). A slot is written over only once its attempt's outcome
// is durable, so the file always holds every attempt that began its end of data and has no durable
// outcome; its size is the most attempts ever under way at once times SLOT. Made (empty) when the
// worker registers; removed when it unregisters or is recovered.

import fs, { constants } from 'node:fs';

/** The name of a worker's file in its claim directory (not a claim: claims end in .json). */
export const WRITING_FILE = 'writing';

/** Bytes per slot: an id (at most 40 characters), '@', an attempt number, padding, a newline. */
const SLOT = 64;

/** One worker's file of attempts writing their end of data. */
export class WritingNotes {
  readonly #path: string;
  #fd: number | undefined;
  readonly #slotOf = new Map<string, number>();
  readonly #free: number[] = [];
  #slots = 0;
  readonly #buffer = Buffer.alloc(SLOT);

  constructor(path: string) {
    this.#path = path;
  }

  /**
   * Notes that attempt `attempt` of message `id` is about to write its end of data: one write to the
   * page cache (the file, made at registration, is opened by the first note: gone, because the
   * worker was recovered meanwhile, it throws). Throws when it cannot be written: the end of data
   * must not be written then.
   */
  note(id: string, attempt: number): void {
    const text = `${id}@${attempt}`;
    if (text.length >= SLOT) throw new RangeError(`an attempt name longer than ${SLOT - 1} bytes: ${text.slice(0, 80)}`);
    this.#fd ??= fs.openSync(this.#path, constants.O_RDWR);
    let slot = this.#slotOf.get(id);
    if (slot === undefined) {
      slot = this.#free.pop() ?? this.#slots++;
      this.#slotOf.set(id, slot);
    }
    const buffer = this.#buffer;
    buffer.fill(0x20);
    buffer.write(text, 0, 'latin1');
    buffer[SLOT - 1] = 0x0a;
    const written = fs.writeSync(this.#fd, buffer, 0, SLOT, slot * SLOT);
    if (written !== SLOT) throw new Error(`${this.#path}: a short write (${written} of ${SLOT} bytes)`);
  }

  /** The attempt of `id` has a durable outcome (or this worker lost its claim): its slot may be reused. */
  release(id: string): void {
    const slot = this.#slotOf.get(id);
    if (slot === undefined) return;
    this.#slotOf.delete(id);
    this.#free.push(slot);
  }

  /** Closes the file (it stays: the caller removes it with its claim directory). Notes made after reopen it. */
  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    this.#slotOf.clear();
    this.#free.length = 0;
    this.#slots = 0;
    fs.closeSync(fd);
  }
}

/**
 * Makes a worker's empty notes file (at registration, before its worker file is published); false
 * when it is already there (a claim directory that was never removed): then it is kept as it is, with
 * the notes of the attempts under way.
 */
export function createWritingNotes(path: string): boolean {
  try {
    fs.closeSync(fs.openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * The attempts ("<id>@<n>") a dead worker's file says began their end of data, or undefined when the
 * file cannot be read or is gone (then nothing is known: it was made before the worker could mark).
 */
export function readWritingNotes(path: string): Set<string> | undefined {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch {
    return undefined;
  }
  const notes = new Set<string>();
  for (let at = 0; at < bytes.length; at += SLOT) {
    const text = bytes.toString('latin1', at, Math.min(bytes.length, at + SLOT)).trim();
    if (text) notes.add(text);
  }
  return notes;
}

/**
 * What makes a process's page-cache writes outlive it, on Linux: this boot and this pid namespace.
 * Two processes with the same value run on one kernel since its boot and see each other's pids.
 * Undefined where /proc does not tell (then no note is trusted).
 */
export function machineLife(): string | undefined {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const pidns = fs.readlinkSync('/proc/self/ns/pid');
    return boot && pidns ? `${boot} ${pidns}` : undefined;
  } catch {
    return undefined;
  }
}
