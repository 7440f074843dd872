// One mail transaction (RFC 5321 §3.3): MAIL, RCPT for each recipient, then
// the message by DATA or BDAT, with the fewest round trips the server allows.
//
// - With PIPELINING (RFC 2920), MAIL, every RCPT and DATA leave in one write,
//   and with CHUNKING (RFC 3030) a message that fits one chunk goes with them
//   as `BDAT n LAST`: one round trip per message.
// - When transactions are queued on one connection, the next one's commands
//   ride in the same write as this one's end of data ("prewrite"), so queued
//   messages also cost one round trip each.
// - Replies are consumed strictly in order, all of them, even after a failure.
// - The body never follows a refused DATA, and DATA never starts a message for
//   zero recipients. A failure before the end of data is followed by RSET so
//   the connection stays usable; after the end of data nothing is owed.

import {
  SMTPDataError,
  SMTPException,
  SMTPInvalidArgumentError,
  SMTPNotSupportedError,
  SMTPRecipientsRefused,
  SMTPSenderRefused,
  SMTPServerDisconnected,
  type DeliveryStatus,
} from '../errors.js';
import { isAscii, toPath } from '../protocol/address.js';
import type { Capabilities } from '../protocol/capabilities.js';
import { commandLine } from '../protocol/commands.js';
import { DataEncoder, ENCODE_WINDOW, encodeWhole, firstDotLine, measureContent, Pieces, type EncoderMode } from '../protocol/data-encoder.js';
import { coalesce } from '../wire/transport.js';
import {
  renderMailParameters,
  renderRcptParameters,
  type MailOptions,
  type RcptOptions,
} from '../protocol/params.js';
import { Reply, syntheticReply } from '../protocol/reply.js';
import { settledReply, type ReplyHandle, type Session } from '../session/session.js';
import type { MessageSource, SmtpRequirements } from '../message/source.js';
import type { Timeouts } from './options.js';
import { RefusedRecipients } from '../protocol/refused-recipients.js';

export interface TransactionRequest {
  from: string;
  to: readonly string[];
  source: MessageSource;
  mail: MailOptions;
  rcpt: RcptOptions;
  /** sendMessage(): non-ASCII addresses also ask for BODY=8BITMIME, as smtplib does. */
  internationalBody?: boolean;
  signal?: AbortSignal | undefined;
  /** sendMessage() of a SerializableMessage: what it says its bytes need (SMTPUTF8, BODY=8BITMIME). */
  requirements?: SmtpRequirements | undefined;
  /** Awaited just before the end of data (the final dot, or BDAT LAST) is written; see SendOptions.beforeCommit. */
  beforeCommit?: (() => unknown) | undefined;
  /** Called synchronously just before the write that carries the end of data; see SendOptions.beforeCommitSync. */
  beforeCommitSync?: (() => void) | undefined;
  /**
   * Work that must finish before the first command of this transaction is
   * written (DKIM signing a stream: a full read of the message); returns the
   * source to send and what to release when the transaction ends (a spool
   * file). A failure here leaves nothing sent.
   */
  prepare?: () => Promise<{ source: MessageSource; release?: () => Promise<void> }>;
}

/** The outcome of a transaction in which at least one recipient got the message. */
export interface DeliveryResult {
  /** Recipients the server accepted (for LMTP: that got the message). */
  accepted: string[];
  /** Recipients refused, at RCPT or (LMTP) after the data. */
  refused: RefusedRecipients;
  /** The reply to the end of data (LMTP: the last positive one). */
  reply: Reply;
  /** LMTP: each accepted-at-RCPT recipient's reply after the data, in RCPT order. */
  recipientReplies?: Map<string, Reply>;
}

/** What a transaction needs from the client that runs it. */
export interface TransactionContext {
  session: Session;
  capabilities: Capabilities;
  secure: boolean;
  /** TLS with a verified certificate (REQUIRETLS needs it). */
  verified: boolean;
  lmtp: boolean;
  pipelining: boolean;
  chunking: boolean;
  /** The caller's BDAT chunk size; undefined: DEFAULT_CHUNK_SIZE for a stream, one chunk for a body in memory. */
  chunkSize: number | undefined;
  /** 'reject': refuse message data with a line over 998 octets (RFC 5321 §4.5.3.1.6). Default 'allow'. */
  longLines?: 'allow' | 'reject';
  timeouts: Timeouts;
  rset(): Promise<void>;
  /** A queued transaction's commands are already on the wire behind this one. */
  writtenAhead(): boolean;
}

interface Plan {
  mailLine: string;
  rcptLines: string[];
  recipients: string[];
  mode: EncoderMode;
  useBdat: boolean;
  /** A body in memory, already encoded (slices): for BDAT, and for DATA of at most one window (a larger one is only measured here and encoded as it is written). */
  encoded?: { chunks: Buffer[]; tail: Buffer; size: number };
  /**
   * A DATA body in memory, measured and not encoded ahead, whose content is
   * its own bytes (every line end a CRLF, the last line ended): its DATA
   * encoding differs from it only at lines that start with ".".
   */
  verbatim: boolean;
}

/**
 * Waiters registered by a group write that this transaction has not consumed yet.
 * A class, every field set from the start: one shape for every group (a property
 * added later, as a plain object grew, gave #group a second shape and a deopt).
 */
class Head {
  /** MAIL's and each RCPT's reply: promises, or for a whole message (bdatLast) handles read once BDAT LAST's reply has come. */
  mail: Promise<Reply> | ReplyHandle = NO_HANDLE;
  rcpts: readonly (Promise<Reply> | ReplyHandle)[] = NO_OWED;
  data: Promise<Reply> | undefined = undefined;
  /** The whole body went as one BDAT LAST; these are its replies (one, or one per recipient for LMTP). */
  bdatLast: Promise<Reply>[] | undefined = undefined;
  /** The group's last byte has left this process (so a lost BDAT LAST reply means "maybe delivered"). */
  flushed = false;
}

/** Head.mail and Head.rcpts before the group sets them. */
const NO_HANDLE: ReplyHandle = { reply: undefined, error: undefined };
const NO_OWED: readonly (Promise<Reply> | ReplyHandle)[] = [];

export class Transaction {
  readonly request: TransactionRequest;
  #plan: Plan | undefined;
  #head: Head | undefined;
  /** End-of-data replies read so far (LMTP: one per recipient, in RCPT order). */
  #endReplies: Reply[] = [];
  #prewrittenOn: TransactionContext | undefined;

  constructor(request: TransactionRequest) {
    this.request = request;
  }

  /**
   * Builds and checks every command line; throws on bad input before
   * anything is written. Deterministic for a given context.
   */
  plan(ctx: TransactionContext): Plan {
    if (this.#plan) return this.#plan;
    const { request } = this;
    const caps = ctx.capabilities;
    if (request.to.length === 0) throw new SMTPInvalidArgumentError('no recipients given');
    const mail: MailOptions = { ...request.mail };
    let international = !isAscii(request.from);
    for (let i = 0; !international && i < request.to.length; i++) international = !isAscii(request.to[i]!);
    // The rare cases (non-ASCII addresses, 8-bit or UTF-8 content, a SIZE
    // limit exceeded) are decided in functions of their own: V8 compiles a
    // hot function with all of its code, and plan() runs for every message.
    if (international) internationalEnvelope(request, caps, mail);
    const source = request.source;
    const useBdat = ctx.chunking && caps.has('chunking');
    if (mail.body === 'BINARYMIME' && !useBdat) throw binaryMimeWithoutChunking();
    // Only the caller sets BINARYMIME: the 8-bit decisions below cannot change the mode.
    const mode: EncoderMode = mail.body === 'BINARYMIME' ? 'binary' : useBdat ? 'bdat' : 'data';
    // A body in memory is read here by the scan that encodes it (or, for
    // DATA, measures it: see below), which also finds whether a byte is over 127.
    let ahead: { chunks?: Buffer[] | undefined; tail?: Buffer; contentBytes: number; eightBit: boolean } | undefined;
    if (source.kind === 'bytes') {
      if (ctx.longLines === 'reject' && overLongLine(source.bytes, { run: 0 })) throw lineTooLong();
      ahead = mode === 'data' && source.bytes.length > ENCODE_WINDOW ? measureContent(source.bytes) : encodeWhole(source.bytes, mode);
    }
    // A stream is not read ahead; a file whose writer saw every byte may say (MessageFile.eightBit).
    if ((ahead ? ahead.eightBit : source.kind === 'stream' && source.eightBit === true) && !mail.body) eightBitBody(source, caps, mail);
    if (request.requirements) applyRequirements(request.requirements, caps, mail);
    const utf8 = Boolean(mail.smtputf8);
    const fromPath = toPath(request.from, { smtputf8: utf8, role: 'sender' });
    const rcptParams = renderRcptParameters(request.rcpt, { capabilities: caps, secure: ctx.secure, verified: ctx.verified });
    // Built by push, not map(): map() inlined by the optimizing compiler gave
    // the array another shape than the interpreter's, and #group, optimized
    // on the first shape, was deoptimized and compiled again.
    const rcptLines: string[] = [];
    const recipients: string[] = [];
    for (let i = 0; i < request.to.length; i++) {
      const to = request.to[i]!;
      rcptLines.push(commandLine(`RCPT TO:${toPath(to, { smtputf8: utf8, role: 'recipient' })}${rcptParams}`));
      recipients.push(to);
    }
    let encoded: Plan['encoded'];
    let verbatim = false;
    if (ahead !== undefined) {
      // BDAT needs the chunks' exact sizes before the first is written, so
      // the body was encoded above. DATA only needs the size before MAIL: a
      // body larger than a window was only measured (the one serial step
      // before MAIL, while the server idles) and is encoded window by window
      // as it is written after the 354, while the server reads the windows
      // before: slices of it where nothing changes, else a few reused
      // buffers (a whole dot-stuffed copy of a 20 MB message cost 20 MB of
      // fresh memory and most of the send's CPU in page faults).
      let size: number;
      if (ahead.chunks && ahead.tail) {
        encoded = { chunks: ahead.chunks, tail: ahead.tail, size: ahead.contentBytes };
        size = encoded.size;
      } else {
        size = ahead.contentBytes;
        // Every change but a stuffed dot adds content (a CR, an LF, a last line end).
        verbatim = source.kind === 'bytes' && size === source.bytes.length;
      }
      if (caps.has('size')) mail.size = size;
      const limit = caps.maxSize;
      if (limit !== undefined && size > limit) throw overSizeLimit(size, limit);
    }
    if (source.kind === 'stream' && source.size !== undefined && mail.size === undefined && caps.has('size')) {
      // A whole file: its length is known before reading (normalized line ends may add a little).
      mail.size = source.size;
      const limit = caps.maxSize;
      if (limit !== undefined && source.size > limit) throw overSizeLimit(source.size, limit);
    }
    const mailLine = commandLine(`MAIL FROM:${fromPath}${renderMailParameters(mail, { capabilities: caps, secure: ctx.secure, verified: ctx.verified })}`);
    // One literal, `encoded` always present (possibly undefined): every plan
    // has the same shape, so the code that reads plans stays monomorphic.
    this.#plan = { mailLine, rcptLines, recipients, mode, useBdat, encoded, verbatim };
    return this.#plan;
  }

  /**
   * Registers this transaction's envelope waiters and returns the bytes to
   * append to the previous transaction's last write. Undefined when this
   * transaction cannot be pipelined (or its plan fails: it will throw in run()).
   */
  prewrite(ctx: TransactionContext): { bytes: Buffer[]; log: string[]; flushed(): void } | undefined {
    if (this.#head || !ctx.pipelining || !ctx.capabilities.has('pipelining')) return undefined;
    // Not prepared yet: its commands wait for its turn.
    if (this.request.prepare) return undefined;
    if (this.request.signal?.aborted) return undefined;
    let plan: Plan;
    try {
      plan = this.plan(ctx);
    } catch {
      return undefined;
    }
    let group: { head: Head; bytes: Buffer[]; log: string[] };
    try {
      group = this.#group(ctx, plan);
    } catch {
      // Its beforeCommitSync hook refused (nothing registered, nothing written): run() calls it again and fails.
      return undefined;
    }
    const head = group.head;
    this.#head = head;
    this.#prewrittenOn = ctx;
    return { bytes: group.bytes, log: group.log, flushed: () => { head.flushed = true; } };
  }

  /**
   * Runs the transaction to its end. A failure that says nothing about
   * delivery is 'not-delivered' (the caller, SMTP, marks it: one promise
   * less per message than a catch here).
   */
  run(ctx: TransactionContext, next: () => Transaction | undefined): Promise<DeliveryResult> {
    return this.request.prepare ? this.#runPrepared(ctx, next) : this.#run(ctx, next);
  }

  async #runPrepared(ctx: TransactionContext, next: () => Transaction | undefined): Promise<DeliveryResult> {
    let release: (() => Promise<void>) | undefined;
    try {
      const prepared = await this.request.prepare!();
      this.request.source = prepared.source;
      release = prepared.release;
      delete this.request.prepare;
      return await this.#run(ctx, next);
    } finally {
      if (release) await release();
    }
  }

  async #run(ctx: TransactionContext, next: () => Transaction | undefined): Promise<DeliveryResult> {
    const { session, timeouts } = ctx;
    const plan = this.plan(ctx);
    const signal = this.request.signal;
    let head = this.#head;
    if (!head && ctx.pipelining && ctx.capabilities.has('pipelining')) {
      const group = this.#group(ctx, plan);
      head = group.head;
      session.write(group.bytes, group.log);
      if (head.bdatLast) {
        // Always one await here, even with nothing to drain: sends issued in
        // the same burst as this one are queued by then and ride in the chain
        // below (written in the same tick: one writev for all of them).
        await (session.transport.clear ? undefined : session.transport.drain(timeouts.dataWrite, signal));
        head.flushed = true;
      }
    }
    // Everything else (commands one by one, DATA, a body in several chunks,
    // LMTP) runs in #runStepwise. This function is only what every message
    // sent whole (one group: MAIL, RCPT, BDAT LAST and the body) goes
    // through: V8 compiles a hot function with all of its code, and the
    // whole of #run was ~11 ms of optimizing-compiler time per process,
    // against ~4 ms for this part.
    const bdatLast = head?.bdatLast;
    if (head === undefined || bdatLast === undefined) return this.#runStepwise(ctx, plan, head, next);
    // A whole message is on the wire: queued transactions can follow at once, without waiting for replies.
    if (next()) await this.#chainAhead(ctx, next);
    // One wait, for BDAT LAST's reply (or the failure that ended the
    // session); MAIL's and RCPT's replies came before it and are read from
    // their handles, in the same order and with the same errors as awaiting
    // each would give.
    let endReply: Reply | undefined;
    let endError: unknown;
    try {
      endReply = await session.await(bdatLast[0]!, signal);
    } catch (error) {
      endError = error;
    }
    const { mailReply, accepted, refused } = settledEnvelope(plan, head);
    const refusal = this.#refusal(ctx, plan, head, mailReply, accepted, refused);
    if (refusal) await refusal;
    if (endError !== undefined) throw endError;
    this.#endReplies.push(endReply!);
    return this.#result(ctx, plan, accepted, refused, this.#endReplies);
  }

  /** #run() for every transaction not sent whole in one group. */
  async #runStepwise(ctx: TransactionContext, plan: Plan, head: Head | undefined, next: () => Transaction | undefined): Promise<DeliveryResult> {
    const { session, timeouts } = ctx;
    const signal = this.request.signal;
    // --- envelope -------------------------------------------------------
    const refused = new RefusedRecipients();
    const accepted: string[] = [];
    let mailReply: Reply;
    if (head) {
      mailReply = head.mail instanceof Promise ? await session.await(head.mail, signal) : settledReply(head.mail);
      for (let i = 0; i < head.rcpts.length; i++) {
        const owed = head.rcpts[i]!;
        const reply = owed instanceof Promise ? await session.await(owed, signal) : settledReply(owed);
        if (reply.isPositive) accepted.push(plan.recipients[i]!);
        else refused.set(plan.recipients[i]!, reply);
      }
    } else {
      mailReply = await session.command(plan.mailLine, { phase: 'command', timeout: timeouts.command, signal });
      if (mailReply.isPositive) {
        for (let i = 0; i < plan.rcptLines.length; i++) {
          const reply = await session.command(plan.rcptLines[i]!, { phase: 'command', timeout: timeouts.command, signal });
          if (reply.isPositive) accepted.push(plan.recipients[i]!);
          else refused.set(plan.recipients[i]!, reply);
          if (reply.code === 421) break;
        }
      }
    }
    const refusal = this.#refusal(ctx, plan, head, mailReply, accepted, refused);
    if (refusal) await refusal;

    // --- message --------------------------------------------------------
    let endReplies: Reply[];
    try {
      endReplies = plan.useBdat
        ? await this.#sendBdat(ctx, plan, accepted.length, next)
        : await this.#sendData(ctx, plan, head, accepted.length, next);
    } catch (error) {
      // LMTP: name every recipient whose own reply after the data never came
      // (their delivery is unknown), and keep the replies of the ones before
      // them (each delivered or refused for certain).
      if (ctx.lmtp && error instanceof SMTPException && error.deliveryStatus === 'unknown') {
        const answered = this.#endReplies.length;
        error.pendingRecipients = accepted.slice(answered);
        error.recipientReplies = new Map(accepted.slice(0, answered).map((address, i) => [address, this.#endReplies[i]!]));
      }
      throw error;
    }
    return this.#result(ctx, plan, accepted, refused, endReplies);
  }

  /**
   * What a refused envelope means: undefined when the message may go on (at
   * least one recipient accepted), else a promise that rejects with the
   * error, once the group's other replies are consumed and (unless the
   * connection is gone) RSET has run.
   */
  #refusal(ctx: TransactionContext, plan: Plan, head: Head | undefined, mailReply: Reply, accepted: string[], refused: RefusedRecipients): Promise<void> | undefined {
    if (mailReply.isPositive && accepted.length > 0 && refused.size === 0) return undefined;
    return this.#refuse(ctx, plan, head, mailReply, accepted, refused);
  }

  async #refuse(ctx: TransactionContext, plan: Plan, head: Head | undefined, mailReply: Reply, accepted: string[], refused: RefusedRecipients): Promise<void> {
    if (!mailReply.isPositive) {
      await this.#drainHead(ctx, head);
      throw await this.#abort(ctx, new SMTPSenderRefused(mailReply.code, mailReply.message, this.request.from, {
        reply: mailReply,
        command: plan.mailLine,
      }));
    }
    if (refused.size) {
      const closing = [...refused.values()].find((r) => r.code === 421);
      if (closing) {
        throw new SMTPServerDisconnected(`the server closed the connection: ${closing.code} ${closing.message}`);
      }
    }
    if (accepted.length === 0) {
      await this.#drainHead(ctx, head);
      throw await this.#abort(ctx, new SMTPRecipientsRefused(refused));
    }
  }

  /** True once this transaction's commands (and, for BDAT LAST, its body) were written ahead of its turn. */
  get prewritten(): boolean {
    return this.#head !== undefined;
  }

  /**
   * The context it was written ahead on. Its replies may all have arrived
   * before the server closed the connection (a 421 to a later command): they
   * are read from this session even when it is closed by the time this
   * transaction's turn comes, so a delivered message is never reported failed.
   */
  get prewrittenContext(): TransactionContext | undefined {
    return this.#prewrittenOn;
  }

  /** Written ahead with its whole message (MAIL, RCPT, BDAT LAST and the body): anything may follow it. */
  get prewrittenWhole(): boolean {
    return this.#head?.bdatLast !== undefined;
  }

  /**
   * Writes the groups of the transactions queued behind this one while each
   * is complete on its own (BDAT LAST with the body), up to a window, so a
   * queue of small messages needs less than one round trip each. A DATA
   * group ends the chain: after DATA, only its body may follow.
   */
  async #chainAhead(ctx: TransactionContext, next: () => Transaction | undefined): Promise<void> {
    for (let written = 0; written < CHAIN_WINDOW && ctx.session.isOpen; written++) {
      const following = next();
      const ahead = following?.prewrite(ctx);
      if (!following || !ahead) return;
      ctx.session.write(ahead.bytes, ahead.log);
      if (!ctx.session.transport.clear) await ctx.session.transport.drain(ctx.timeouts.dataWrite, this.request.signal);
      ahead.flushed();
      if (!following.#head?.bdatLast) return;
    }
  }

  /** MAIL + RCPTs (+ DATA, or + the whole body as BDAT LAST) as one group. */
  #group(ctx: TransactionContext, plan: Plan): { head: Head; bytes: Buffer[]; log: string[] } {
    const { session, timeouts } = ctx;
    // A message that fits one chunk rides whole in this group (BDAT LAST
    // and the body follow the envelope in the same write). Once the group has
    // left this process the server may have delivered it, so ANY of its
    // replies lost with the connection (MAIL's and RCPT's too, which come
    // before BDAT's) means 'unknown', never 'not-delivered' (which a pool
    // would resend: the duplicates of the CHUNKING soak with drops).
    // (A beforeCommit hook must run before the end of data is written, so
    // such a message never rides whole; nor does LMTP, which owes one reply
    // per recipient accepted at RCPT after BDAT LAST, a count not known
    // until the RCPT replies are in.)
    const whole = plan.useBdat && plan.encoded !== undefined && plan.encoded.size <= (ctx.chunkSize ?? DEFAULT_CHUNK_SIZE) && !ctx.lmtp && !this.request.beforeCommit;
    // A whole message's end of data leaves with its envelope: the hook runs before anything of it is written.
    if (whole && this.request.beforeCommitSync) this.#beforeCommitSync(ctx, false);
    const head = new Head();
    const afterDataEnd = whole ? () => head.flushed : false;
    const timeout = timeouts.command;
    // A whole message's envelope replies need no promise of their own: BDAT
    // LAST's reply comes after them (see ReplyHandle).
    head.mail = whole ? session.expectHandle(plan.mailLine, 'command', timeout, afterDataEnd) : session.expectReply(plan.mailLine, 'command', timeout, afterDataEnd);
    // The command lines as one string (what is written) and, only when
    // someone reads them, as a list (what is logged).
    const rcptLines = plan.rcptLines;
    // Filled by push: a preallocated `new Array(n)` changed its elements kind on the first store (a deopt of this function).
    const rcpts: (Promise<Reply> | ReplyHandle)[] = [];
    let text = plan.mailLine + '\r\n';
    for (let i = 0; i < rcptLines.length; i++) {
      rcpts.push(whole ? session.expectHandle(rcptLines[i]!, 'command', timeout, afterDataEnd) : session.expectReply(rcptLines[i]!, 'command', timeout, afterDataEnd));
      text += rcptLines[i]! + '\r\n';
    }
    head.rcpts = rcpts;
    let last: string | undefined;
    const bytes: Buffer[] = [];
    if (!plan.useBdat) {
      head.data = session.expectReply('DATA', 'command', timeout);
      last = 'DATA';
      bytes.push(Buffer.from(text + 'DATA\r\n', 'utf8'));
    } else if (whole && plan.encoded) {
      const { chunks, tail, size } = plan.encoded;
      last = `BDAT ${size} LAST`;
      head.bdatLast = [session.expectReply(last, 'data-end', timeouts.dataEnd, afterDataEnd)];
      bytes.push(Buffer.from(text + last + '\r\n', 'utf8'));
      for (let i = 0; i < chunks.length; i++) bytes.push(chunks[i]!);
      if (tail.length) bytes.push(tail);
    } else {
      bytes.push(Buffer.from(text, 'utf8'));
    }
    const log = session.logsCommands ? [plan.mailLine, ...rcptLines, ...(last ? [last] : [])] : NO_LINES;
    return { head, bytes, log };
  }

  /** Registers the replies owed after the end of data: one, or for LMTP one per recipient accepted at RCPT. */
  #endWaiters(ctx: TransactionContext, command: string, count: number, flushed: () => boolean = () => true): Promise<Reply>[] {
    const waiters: Promise<Reply>[] = [];
    for (let i = 0; i < count; i++) {
      waiters.push(ctx.session.expectReply(command, 'data-end', ctx.timeouts.dataEnd, flushed));
    }
    return waiters;
  }

  async #sendData(ctx: TransactionContext, plan: Plan, head: Head | undefined, acceptedCount: number, next: () => Transaction | undefined): Promise<Reply[]> {
    const { session, timeouts } = ctx;
    const signal = this.request.signal;
    const dataReply = head?.data
      ? await session.await(head.data, signal)
      : await session.command('DATA', { phase: 'command', timeout: timeouts.command, signal });
    if (dataReply.code !== 354) {
      throw await this.#abort(ctx, new SMTPDataError(dataReply.code, dataReply.message, undefined, { reply: dataReply, command: 'DATA' }));
    }
    // Unless plan() encoded it ahead, the body is encoded as it is written,
    // into a few reusable buffers, each given back when the socket has
    // written it: RSS stays flat however long the message or stream.
    // The end marker goes only once the body has left: a server that stopped
    // reading, or went away mid-body, then certainly has not got the message
    // ('data-write', 'not-delivered').
    if (plan.encoded) {
      // Encoded ahead (see plan()): slices of the message, written in large
      // pieces with back-pressure between them.
      for (const piece of dataWrites(plan.encoded.chunks)) {
        this.#writeData(ctx, [piece]);
        await session.transport.drain(timeouts.dataWrite, signal);
      }
      if (plan.encoded.chunks.length === 0) await session.transport.drain(timeouts.dataWrite, signal);
      return this.#finish(ctx, [plan.encoded.tail], '.', ctx.lmtp ? acceptedCount : 1, next);
    }
    const encoder = new DataEncoder('data', { reuseOutput: session.transport.copiesWrites });
    const source = this.request.source;
    if (source.kind === 'bytes') {
      // Windows go out DATA_WRITE_BATCH at a time, in one write (one writev):
      // a write per 64 KiB window cost 14 ms of system time per 20 MB with a
      // dot on every line, against 6 ms for the same bytes in large writes
      // (loopback, Node 20). The pieces are lent from the encoder's slots;
      // when none would be free for the next batch, the loop yields to the
      // event loop, where the finished writes give theirs back (a write that
      // completed at once reports it on a later tick), instead of making the
      // encoder allocate fresh ones. A batch's windows that need no change
      // are one view of the message (Pieces merges them): a text body goes
      // out as slices of itself, nothing copied.
      const bytes = source.bytes;
      const from = plan.verbatim ? await this.#writeVerbatim(ctx, bytes) : 0;
      const batchBytes = DATA_WRITE_BATCH * ENCODE_WINDOW;
      for (let i = from; i < bytes.length; i += batchBytes) {
        const pieces = new Pieces();
        encoder.encodeTo(pieces, bytes, i, Math.min(bytes.length, i + batchBytes));
        const lent = pieces.done();
        this.#writeData(ctx, lent, () => { for (const piece of lent) encoder.release(piece); });
        if (!session.transport.clear) await session.transport.drain(timeouts.dataWrite, signal);
        else if (encoder.slotsLeft < DATA_WRITE_BATCH) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } else {
      await this.#streamBody(ctx, encoder, async (pieces) => {
        this.#writeData(ctx, pieces, () => { for (const piece of pieces) encoder.release(piece); });
        await session.transport.drain(timeouts.dataWrite, signal);
      });
    }
    const tail = encoder.end();
    return this.#finish(ctx, [tail], '.', ctx.lmtp ? acceptedCount : 1, next);
  }

  /**
   * Writes the front of a verbatim body (Plan.verbatim) as it is, up to its
   * first line that starts with "." (or its end), in views of at most
   * DATA_WRITE_BYTES with back-pressure between them; returns where it
   * stopped, a line start, from where the encoder takes over. Each write's
   * range is searched (firstDotLine) just before it is written, while the
   * server reads the writes before: a second pass of the encoder over a
   * 20 MB body cost 3.8 ms more CPU, and its 640 more calls per message got
   * the encoder's functions compiled by TurboFan (+3 MB peak RSS, Node 20).
   */
  async #writeVerbatim(ctx: TransactionContext, bytes: Buffer): Promise<number> {
    const { session, timeouts } = ctx;
    const signal = this.request.signal;
    if (bytes[0] === DOT) return 0;
    let at = 0;
    while (at < bytes.length) {
      // The first write is one window: the server, idle since the 354, starts
      // reading while the next range is searched.
      const end = Math.min(bytes.length, at + (at === 0 ? ENCODE_WINDOW : DATA_WRITE_BYTES));
      const dot = firstDotLine(bytes, at, end);
      const stop = dot === -1 ? end : dot;
      this.#writeData(ctx, [bytes.subarray(at, stop)]);
      if (!session.transport.clear) await session.transport.drain(timeouts.dataWrite, signal);
      at = stop;
      if (dot !== -1) break;
    }
    return at;
  }

  async #sendBdat(ctx: TransactionContext, plan: Plan, acceptedCount: number, next: () => Transaction | undefined): Promise<Reply[]> {
    const { session, timeouts } = ctx;
    const signal = this.request.signal;
    const pipelined = ctx.pipelining && ctx.capabilities.has('pipelining');
    const chunkReplies: Promise<Reply>[] = [];
    let failed: Reply | undefined;
    const check = async (): Promise<void> => {
      // Without PIPELINING every chunk's reply is awaited before the next one.
      if (!pipelined) {
        const reply = await session.await(chunkReplies[chunkReplies.length - 1]!, signal);
        if (!reply.isPositive) failed = reply;
      }
    };
    const sendChunk = async (pieces: Buffer[], size: number, last: boolean): Promise<void> => {
      const line = `BDAT ${size}${last ? ' LAST' : ''}`;
      if (last) {
        const replies = await this.#finish(ctx, [Buffer.from(`${line}\r\n`), ...pieces], line, ctx.lmtp ? acceptedCount : 1, next, line);
        lastReplies = replies;
        return;
      }
      const reply = session.expect({ command: line, phase: 'command', timeout: timeouts.command });
      // Pipelined chunks are not awaited one by one, but a refusal is noted as
      // soon as it arrives, so no further chunk of this body is written (RFC 3030 §2).
      reply.then((r) => { if (!r.isPositive) failed ??= r; }, () => undefined);
      chunkReplies.push(reply);
      session.write([Buffer.from(`${line}\r\n`), ...pieces], [line]);
      if (session.debug.enabled) session.debug.data(pieces);
      await session.transport.drain(timeouts.dataWrite, signal);
      await check();
    };
    let lastReplies: Reply[] = [];
    if (plan.encoded) {
      const { chunks, tail, size } = plan.encoded;
      const all = tail.length ? [...chunks, tail] : chunks;
      if (ctx.chunkSize !== undefined || this.request.beforeCommit) {
        // The caller's chunk size; and with a beforeCommit hook, whose promise is that
        // nothing saying LAST is written before it ran, chunks of the default size.
        await this.#chunked(all, size, ctx.chunkSize ?? DEFAULT_CHUNK_SIZE, sendChunk, () => failed !== undefined);
      } else {
        // A body in memory, its size known: one chunk, `BDAT <size> LAST`, as
        // MailKit and Exchange send it. Its pieces are views of the message
        // (no memory held), and every further chunk cost a reply to read and
        // a round of promises: 20 chunks of 1 MiB took 12.1 ms of CPU per
        // 20 MB message, one chunk 8.5 ms (20 messages to the bench sink,
        // perf stat, Node 20). It still leaves in writes of at most 1 MiB
        // with back-pressure between them, as DATA's body does (the
        // dataWrite timeout is per write).
        const line = `BDAT ${size} LAST`;
        const writes = dataWrites(all);
        if (writes.length <= 1) await sendChunk(writes, size, true);
        else {
          session.write([Buffer.from(`${line}\r\n`), writes[0]!], [line]);
          if (session.debug.enabled) session.debug.data([writes[0]!]);
          await session.transport.drain(timeouts.dataWrite, signal);
          for (let i = 1; i < writes.length - 1; i++) {
            this.#writeData(ctx, [writes[i]!]);
            await session.transport.drain(timeouts.dataWrite, signal);
          }
          lastReplies = await this.#finish(ctx, [writes[writes.length - 1]!], line, ctx.lmtp ? acceptedCount : 1, next);
        }
      }
    } else {
      const encoder = new DataEncoder(plan.mode);
      let pending: Buffer[] = [];
      let pendingSize = 0;
      const limit = ctx.capabilities.maxSize;
      // A stream's chunks are held in memory until written: their size bounds it.
      const chunkSize = ctx.chunkSize ?? DEFAULT_CHUNK_SIZE;
      await this.#streamBody(ctx, encoder, async (pieces) => {
        if (failed !== undefined) return false; // refused: read no more of the body
        for (const piece of pieces) {
          pending.push(piece);
          pendingSize += piece.length;
        }
        if (limit !== undefined && encoder.contentBytes > limit) {
          throw await this.#abort(ctx, sizeExceeded(encoder.contentBytes, limit));
        }
        // Keep the last chunk back so it can carry LAST.
        while (pendingSize > chunkSize && failed === undefined) {
          const { head: chunk, rest, restSize } = takeBytes(pending, chunkSize);
          pending = rest;
          pendingSize = restSize;
          await sendChunk(chunk, chunkSize, false);
        }
      });
      const tail = encoder.end();
      if (tail.length) { pending.push(tail); pendingSize += tail.length; }
      if (failed === undefined) await sendChunk(pending, pendingSize, true);
    }
    for (const waiter of chunkReplies) {
      const reply = await session.await(waiter, signal);
      if (!reply.isPositive && !failed) failed = reply;
    }
    if (failed) {
      // A refused chunk fails the transaction (RFC 3030 §2); RSET unless LAST was already answered.
      const error = new SMTPDataError(failed.code, failed.message, undefined, { reply: failed, command: 'BDAT' });
      if (lastReplies.length === 0) throw await this.#abort(ctx, error);
      throw error;
    }
    return lastReplies;
  }

  /** Splits an encoded body into chunks of at most `chunkSize` and sends them; the last carries LAST. */
  async #chunked(
    pieces: Buffer[],
    total: number,
    chunkSize: number,
    send: (pieces: Buffer[], size: number, last: boolean) => Promise<void>,
    stopped: () => boolean,
  ): Promise<void> {
    let rest = pieces;
    let remaining = total;
    while (remaining > chunkSize && !stopped()) {
      const taken = takeBytes(rest, chunkSize);
      rest = taken.rest;
      remaining = taken.restSize;
      await send(taken.head, chunkSize, false);
    }
    if (!stopped()) await send(rest, remaining, true);
  }

  /** Pulls the stream through the encoder, handing encoded pieces to `write` (which applies back-pressure). */
  async #streamBody(ctx: TransactionContext, encoder: DataEncoder, write: (pieces: Buffer[]) => Promise<void | false>): Promise<void> {
    const source = this.request.source;
    if (source.kind !== 'stream') return;
    const limit = ctx.capabilities.maxSize;
    const lines = ctx.longLines === 'reject' ? { run: 0 } : undefined;
    try {
      for await (const chunk of source.chunks) {
        if (lines && overLongLine(chunk, lines)) {
          // Part of the message may be on the wire: drop the connection so no truncated message is delivered.
          const error = lineTooLong();
          ctx.session.destroy(error);
          throw error;
        }
        const pieces = encoder.encode(chunk);
        if (!ctx.session.isOpen) ctx.session.assertOpen();
        if (encoder.mode === 'data' && limit !== undefined && encoder.contentBytes > limit) {
          // DATA cannot be abandoned cleanly: the only safe stop is to drop the connection.
          const error = sizeExceeded(encoder.contentBytes, limit);
          ctx.session.destroy(error);
          throw error;
        }
        if (pieces.length && (await write(pieces)) === false) break; // the server refused: stop reading
      }
    } catch (error) {
      if (error instanceof SMTPException) throw error;
      // The caller's stream failed mid-message. In DATA mode the server would
      // take whatever ends the data as a message: drop the connection instead.
      const failure = new SMTPDataError(-1, `reading the message failed: ${(error as Error).message}; the connection was closed so no partial message is delivered`, undefined, {
        cause: error,
        deliveryStatus: 'not-delivered',
      });
      ctx.session.destroy(failure);
      throw failure;
    }
  }

  /** Writes message data; `written` runs once the socket has taken every byte (the pieces may then be reused). */
  #writeData(ctx: TransactionContext, pieces: Buffer[], written?: () => void): void {
    // The debug preview is printed before the write: after it the pieces may be reused.
    if (ctx.session.debug.enabled) ctx.session.debug.data(pieces);
    ctx.session.assertOpen();
    ctx.session.transport.write(pieces, written);
  }

  /**
   * Writes the end of the message (the DATA terminator or the BDAT LAST
   * chunk), with the next queued transaction's commands in the same write,
   * and waits for the end-of-data replies.
   */
  async #finish(
    ctx: TransactionContext,
    final: Buffer[],
    command: string,
    replies: number,
    next: () => Transaction | undefined,
    logLine?: string,
  ): Promise<Reply[]> {
    const { session } = ctx;
    if (this.request.beforeCommit) await this.#beforeCommit(ctx);
    // No await from here to the write below: the hook's note is true of that write.
    if (this.request.beforeCommitSync) this.#beforeCommitSync(ctx, true);
    // Until the last byte of the message has left this process (a large BDAT
    // LAST chunk may sit in our buffer while the server stalls), a lost reply
    // still means "not delivered".
    let flushed = false;
    const waiters = this.#endWaiters(ctx, command, replies, () => flushed);
    const following = next()?.prewrite(ctx);
    const bytes = following ? [...final, ...following.bytes] : final;
    const log = [...(logLine ? [logLine] : []), ...(following?.log ?? [])];
    if (session.debug.enabled) {
      if (!logLine) session.debug.data(final);
      else if (final.length > 1) session.debug.data(final.slice(1));
    }
    session.write(bytes, log);
    if (!session.transport.clear) await session.transport.drain(ctx.timeouts.dataWrite, this.request.signal);
    flushed = true;
    following?.flushed();
    for (const waiter of waiters) this.#endReplies.push(await session.await(waiter, this.request.signal));
    return this.#endReplies;
  }

  /**
   * Runs the caller's synchronous hook just before the write that carries the
   * end of data. If it throws, that write is not made and the send fails as
   * 'not-delivered'; when part of the message was already written (`begun`),
   * the connection is dropped so the server discards it.
   */
  #beforeCommitSync(ctx: TransactionContext, begun: boolean): void {
    try {
      this.request.beforeCommitSync!();
    } catch (error) {
      const failure = new SMTPDataError(-1, `beforeCommitSync failed: ${(error as Error)?.message ?? String(error)}; the end of data was not written${begun ? ' and the connection was closed' : ''}`, undefined, {
        cause: error,
        deliveryStatus: 'not-delivered',
      });
      if (begun) ctx.session.destroy(failure);
      throw failure;
    }
  }

  /**
   * Runs the caller's hook before the end of data. If it fails, the end of
   * data is never written: the connection is dropped (the server discards
   * the unfinished message) and the send fails as 'not-delivered'.
   */
  async #beforeCommit(ctx: TransactionContext): Promise<void> {
    try {
      await this.request.beforeCommit!();
    } catch (error) {
      const failure = new SMTPDataError(-1, `beforeCommit failed: ${(error as Error)?.message ?? String(error)}; the end of data was not written and the connection was closed`, undefined, {
        cause: error,
        deliveryStatus: 'not-delivered',
      });
      ctx.session.destroy(failure);
      throw failure;
    }
  }

  #result(ctx: TransactionContext, plan: Plan, atRcpt: string[], refused: RefusedRecipients, endReplies: Reply[]): DeliveryResult {
    if (!ctx.lmtp) {
      const reply = endReplies[0]!;
      if (!reply.isPositive) {
        if (reply.code === 421) throw new SMTPServerDisconnected(`the server closed the connection: ${reply.code} ${reply.message}`);
        throw new SMTPDataError(reply.code, reply.message, undefined, { reply, command: plan.useBdat ? 'BDAT' : 'end of data' });
      }
      return { accepted: atRcpt, refused, reply };
    }
    // LMTP (RFC 2033 §4.2): one reply per recipient accepted at RCPT, in order.
    const recipientReplies = new Map<string, Reply>();
    const delivered: string[] = [];
    let lastGood: Reply | undefined;
    let firstBad: Reply | undefined;
    atRcpt.forEach((address, i) => {
      const reply = endReplies[i]!;
      recipientReplies.set(address, reply);
      if (reply.isPositive) { delivered.push(address); lastGood = reply; }
      else { refused.set(address, reply); firstBad ??= reply; }
    });
    if (delivered.length === 0) {
      const reply = firstBad!;
      throw new SMTPDataError(reply.code, reply.message, `every recipient was refused after the data: ${[...recipientReplies].map(([a, r]) => `${a}: ${r.code} ${r.message}`).join('; ')}`, {
        reply,
        command: plan.useBdat ? 'BDAT' : 'end of data',
      });
    }
    return { accepted: delivered, refused, reply: lastGood!, recipientReplies };
  }

  /** Consumes replies a group still owes after a failure, so the stream stays in step. */
  async #drainHead(ctx: TransactionContext, head: Head | undefined): Promise<void> {
    if (!head) return;
    for (const waiter of head.rcpts) if (waiter instanceof Promise) await waiter.catch(() => undefined);
    if (head.data) {
      const reply = await head.data.catch(() => undefined);
      if (reply?.code === 354 && ctx.session.isOpen) {
        // The server opened DATA for zero recipients anyway: end it empty.
        const end = ctx.session.expect({ command: '.', phase: 'data-end', timeout: ctx.timeouts.dataEnd });
        ctx.session.write(Buffer.from('.\r\n'), ['.']);
        await end.catch(() => undefined);
      }
    }
    if (head.bdatLast) for (const waiter of head.bdatLast) await waiter.catch(() => undefined);
  }

  /** RSET after a failure before the end of data (unless the connection is gone), then returns the error. */
  async #abort(ctx: TransactionContext, error: SMTPException): Promise<SMTPException> {
    error.deliveryStatus ??= 'not-delivered' as DeliveryStatus;
    const code = (error as { smtpCode?: number }).smtpCode;
    if (code === 421 || !ctx.session.isOpen) {
      if (ctx.session.isOpen) ctx.session.close();
      return code === 421
        ? new SMTPServerDisconnected(`the server closed the connection: ${error.message}`, { cause: error, deliveryStatus: 'not-delivered' })
        : error;
    }
    // RSET would also reset a transaction already pipelined behind this one;
    // when one is, the server has closed this one with its BDAT LAST reply.
    if (ctx.writtenAhead()) return error;
    try {
      await ctx.rset();
    } catch {
      // The original error matters more; a failed RSET has closed the connection.
    }
    return error;
  }
}

/** Non-ASCII addresses: SMTPUTF8 when the server offers it (with BODY=8BITMIME for sendMessage()), else refused when a local part needs it. */
function internationalEnvelope(request: TransactionRequest, caps: Capabilities, mail: MailOptions): void {
  if (caps.has('smtputf8') && mail.smtputf8 === undefined) mail.smtputf8 = true;
  if (mail.smtputf8 && request.internationalBody && !mail.body && caps.has('8bitmime')) mail.body = '8BITMIME';
  if (request.internationalBody && !caps.has('smtputf8')) {
    const local = [request.from, ...request.to].find((a) => !isAscii(a.slice(0, Math.max(0, a.lastIndexOf('@')))));
    if (local) {
      throw new SMTPNotSupportedError(`${JSON.stringify(local)} needs SMTPUTF8 (a non-ASCII local part) but the server does not offer it`);
    }
  }
}

function binaryMimeWithoutChunking(): SMTPNotSupportedError {
  return new SMTPNotSupportedError('BODY=BINARYMIME needs CHUNKING (RFC 3030), which the server does not offer or is disabled');
}

/** A body with a byte over 127 and no BODY= chosen: BODY=8BITMIME, or refused for text given as a string when the server lacks it. */
function eightBitBody(source: MessageSource, caps: Capabilities, mail: MailOptions): void {
  if (caps.has('8bitmime')) mail.body = '8BITMIME';
  else if (source.kind === 'bytes' && source.fromString) {
    throw new SMTPNotSupportedError(
      'the message has non-ASCII text and the server does not offer 8BITMIME; encode it (quoted-printable or base64) first',
    );
  }
}

/** What a SerializableMessage says its bytes need (SMTPUTF8, BODY=8BITMIME), or refused when the server lacks it. */
function applyRequirements(needs: SmtpRequirements, caps: Capabilities, mail: MailOptions): void {
  if (needs.smtputf8 && mail.smtputf8 === undefined) {
    if (!caps.has('smtputf8')) throw new SMTPNotSupportedError('the message has UTF-8 header fields (the SMTPUTF8 policy) and the server does not offer SMTPUTF8; write it with the SMTP policy');
    mail.smtputf8 = true;
  }
  if (needs.eightBitMime && !mail.body) {
    if (!caps.has('8bitmime')) throw new SMTPNotSupportedError('the message has 8-bit content and the server does not offer 8BITMIME; write it with the SMTP policy (quoted-printable or base64)');
    mail.body = '8BITMIME';
  }
}

/** A message known (before anything is written) to exceed the server's SIZE limit. */
function overSizeLimit(size: number, limit: number): SMTPDataError {
  return new SMTPDataError(552, `5.3.4 message size ${size} exceeds the server's SIZE limit of ${limit} octets; nothing was sent`, undefined, {
    reply: syntheticReply(552, `5.3.4 message size ${size} exceeds the server's limit of ${limit}`),
    deliveryStatus: 'not-delivered',
  });
}

/**
 * A whole group's envelope, read from its handles once BDAT LAST's reply (or
 * the failure that ended the session) has come: each handle is settled by
 * then. Throws what failed MAIL's or a RCPT's reply.
 */
function settledEnvelope(plan: Plan, head: Head): { mailReply: Reply; accepted: string[]; refused: RefusedRecipients } {
  const mailReply = settledReply(head.mail as ReplyHandle);
  const accepted: string[] = [];
  const refused = new RefusedRecipients();
  for (let i = 0; i < head.rcpts.length; i++) {
    const reply = settledReply(head.rcpts[i] as ReplyHandle);
    if (reply.isPositive) accepted.push(plan.recipients[i]!);
    else refused.set(plan.recipients[i]!, reply);
  }
  return { mailReply, accepted, refused };
}

/** The log of a group nobody reads. */
const NO_LINES: string[] = [];

/** How many complete transactions may be written ahead of the running one. */
const CHAIN_WINDOW = 16;

/** The longest line RFC 5321 §4.5.3.1.6 allows, without its CRLF. */
const MAX_LINE_OCTETS = 998;

function lineTooLong(): SMTPInvalidArgumentError {
  return new SMTPInvalidArgumentError(`the message has a line longer than ${MAX_LINE_OCTETS} octets (RFC 5321 §4.5.3.1.6) and longLines is 'reject'; it was not sent`, {
    deliveryStatus: 'not-delivered',
  });
}

/** True once a line (ended by CR, LF or CRLF; `state.run` carries across chunks) exceeds 998 octets. */
function overLongLine(buf: Uint8Array, state: { run: number }): boolean {
  const bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let start = 0;
  let nextLF = bytes.indexOf(0x0a, 0);
  let nextCR = bytes.indexOf(0x0d, 0);
  for (;;) {
    const p = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : Math.min(nextLF, nextCR);
    if (p === -1) {
      state.run += bytes.length - start;
      return state.run > MAX_LINE_OCTETS;
    }
    if (state.run + p - start > MAX_LINE_OCTETS) return true;
    state.run = 0;
    start = p + 1;
    if (p === nextLF) nextLF = bytes.indexOf(0x0a, start);
    else nextCR = bytes.indexOf(0x0d, start);
  }
}

function sizeExceeded(size: number, limit: number): SMTPDataError {
  const text = `5.3.4 message is larger than the server's SIZE limit of ${limit} octets (at least ${size}); it was not sent`;
  return new SMTPDataError(552, text, undefined, { reply: syntheticReply(552, text), deliveryStatus: 'not-delivered' });
}

/** BDAT's chunk size for a body read from a stream, and the largest body in memory that rides whole with its envelope, unless the caller sets chunkSize. */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

/** The largest single write of a body encoded ahead, or written as it is (one system call, one wait for the socket to drain). */
const DATA_WRITE_BYTES = 1024 * 1024;
/** Windows (64 KiB of input each) encoded into one write when the body is encoded as it is written. */
const DATA_WRITE_BATCH = 8;
/** What starts a line that DATA stuffs. */
const DOT = 0x2e;

/**
 * The writes of a DATA body encoded ahead: runs of small pieces joined
 * (coalesce), large ones cut into writes of at most DATA_WRITE_BYTES.
 */
function dataWrites(chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const piece of coalesce(chunks)) {
    if (piece.length <= DATA_WRITE_BYTES) out.push(piece);
    else for (let i = 0; i < piece.length; i += DATA_WRITE_BYTES) out.push(piece.subarray(i, i + DATA_WRITE_BYTES));
  }
  return out;
}

/** Takes exactly `count` bytes from the front of a list of buffers. */
function takeBytes(pieces: Buffer[], count: number): { head: Buffer[]; rest: Buffer[]; restSize: number } {
  const head: Buffer[] = [];
  let need = count;
  let i = 0;
  for (; i < pieces.length && need > 0; i++) {
    const piece = pieces[i]!;
    if (piece.length <= need) {
      head.push(piece);
      need -= piece.length;
    } else {
      head.push(piece.subarray(0, need));
      const rest = [piece.subarray(need), ...pieces.slice(i + 1)];
      return { head, rest, restSize: rest.reduce((n, b) => n + b.length, 0) };
    }
  }
  const rest = pieces.slice(i);
  return { head, rest, restSize: rest.reduce((n, b) => n + b.length, 0) };
}

