// Session transcripts in the format of the project's transcript tests
// (test/transcript/cases/*.smtp), so a recording pastes into a regression test:
//
//   # class: SMTP                           (SMTP, SMTP_SSL or LMTP)
//   # recorded: 2026-12-05T22:00:00.000Z from 127.0.0.1:53712 to 127.0.0.1:1025
//   # timing: [0,4,5,5,...]                 (ms since connect, one per S:/C: line)
//   S: 220 capture.localhost ESMTP
//   C: EHLO client.test
//   S: 250-capture.localhost
//   ...
//   S: <starttls>                           (TLS starts here)
//   S: <delay 2000>                         (the server waited, as scripted)
//
// Lines are UTF-8 text; a backslash is written "\\" and a control character
// "\xNN", the escapes the transcript tests read. AUTH arguments, SASL
// continuation lines and SASL challenges are written as "****": replay
// accepts any client text where a recording has "****".

export type TranscriptLine =
  | { side: 'S' | 'C'; text: string; at: number }
  | { side: 'S'; directive: 'starttls' | 'close' | `delay ${number}`; at: number }
  /** The message data (what followed 354), dot-stuffed on output. Without the
   * bytes it is written as the DATA_MARKER line and filled in later from the
   * stored message (expandTranscript), so no message is held twice. */
  | { side: 'C'; data: Buffer | null; at: number };

export const REDACTED = '****';
/** Stands for a message's data in a stored transcript. */
export const DATA_MARKER = 'C: <message data>';

/** Escapes one line for a transcript file. */
export function escapeLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\\\x00-\x1f\x7f]/g, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** Reverses escapeLine (and the \r \n \t escapes the transcript tests also read). */
export function unescapeLine(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|r|n|t|\\)/g, (_, e: string) =>
    e === 'r' ? '\r' : e === 'n' ? '\n' : e === 't' ? '\t' : e === '\\' ? '\\' : String.fromCharCode(parseInt(e.slice(1), 16)),
  );
}

export interface TranscriptHeader {
  className: 'SMTP' | 'SMTP_SSL' | 'LMTP';
  recorded?: string;
}

/** The client lines of message data as sent: dot-stuffed, then the final dot. */
export function dataLines(raw: Buffer): string[] {
  const out: string[] = [];
  if (raw.length > 0) {
    for (const line of raw.toString('utf8').replace(/\r\n$/, '').split('\r\n')) out.push(`C: ${escapeLine(line.startsWith('.') ? `.${line}` : line)}`);
  }
  out.push('C: .');
  return out;
}

/** Writes a transcript file's text (one timing entry per S:/C: line). */
export function formatTranscript(header: TranscriptHeader, lines: TranscriptLine[]): string {
  const body: string[] = [];
  const timing: number[] = [];
  for (const l of lines) {
    if ('data' in l) {
      const written = l.data ? dataLines(l.data) : [DATA_MARKER];
      for (const w of written) {
        body.push(w);
        timing.push(l.at);
      }
      continue;
    }
    body.push('directive' in l ? `S: <${l.directive}>` : `${l.side}: ${escapeLine(l.text)}`);
    timing.push(l.at);
  }
  const out = [`# class: ${header.className}`];
  if (header.recorded) out.push(`# recorded: ${header.recorded}`);
  out.push(`# timing: ${JSON.stringify(timing)}`, ...body);
  return `${out.join('\n')}\n`;
}

/** Fills a stored transcript's DATA_MARKER with the message's data (and its timing entry). */
export function expandTranscript(text: string, raw: Buffer): string {
  const lines = text.split('\n');
  const at = lines.indexOf(DATA_MARKER);
  if (at < 0) return text;
  const data = dataLines(raw);
  const timingAt = lines.findIndex((l) => l.startsWith('# timing: '));
  if (timingAt >= 0) {
    try {
      const timing = JSON.parse(lines[timingAt]!.slice('# timing: '.length)) as number[];
      const index = lines.slice(0, at).filter((l) => /^[SC]: /.test(l)).length;
      timing.splice(index, 1, ...data.map(() => timing[index] ?? 0));
      lines[timingAt] = `# timing: ${JSON.stringify(timing)}`;
    } catch {
      // a hand-edited timing line: leave it
    }
  }
  lines.splice(at, 1, ...data);
  return lines.join('\n');
}

export type ReplayStep =
  | { kind: 'send'; line: string }
  | { kind: 'expect'; line: string }
  | { kind: 'starttls' }
  | { kind: 'close' }
  | { kind: 'delay'; ms: number };

export interface ParsedTranscript {
  className: TranscriptHeader['className'];
  steps: ReplayStep[];
}

/**
 * Converts smtplib's `debugLevel: 1` output (`send: '...'` / `reply: '...'`
 * lines, with or without level 2's timestamps) into S:/C: transcript lines;
 * lines already in transcript form, comments and blank lines pass through.
 * This is what makes a debug log paste into a transcript test.
 */
export function debugLogToScript(text: string): string {
  const out: string[] = [];
  let lastCommand = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const debug = /^(?:\d\d:\d\d:\d\d\.\d{3} )?(send|reply): '(.*)'(?: \.\.\. \(\d+ more bytes\))?$/.exec(line);
    if (debug) {
      const side = debug[1] === 'send' ? 'C' : 'S';
      const parts = unrepr(debug[2]!).split('\r\n');
      if (parts[parts.length - 1] === '') parts.pop();
      for (const p of parts) out.push(`${side}: ${escapeLine(p)}`);
      if (side === 'C' && parts.length) lastCommand = parts[parts.length - 1]!.trim().toUpperCase();
      if (side === 'S' && lastCommand === 'STARTTLS' && /^220 /.test(parts[0] ?? '')) {
        out.push('S: <starttls>');
        lastCommand = '';
      }
      continue;
    }
    // The rest of a debug log: connect lines, parsed-reply summaries.
    if (/^(?:\d\d:\d\d:\d\d\.\d{3} )?(connect: |reply: retcode )/.test(line)) continue;
    out.push(line);
  }
  return out.join('\n');
}

/** Reads a transcript: a recording, a test case, or smtplib's `debugLevel: 1` output. */
export function parseTranscriptText(text: string): ParsedTranscript {
  let className: ParsedTranscript['className'] = 'SMTP';
  const steps: ReplayStep[] = [];
  for (const line of debugLogToScript(text).split('\n')) {
    const meta = /^# class:\s*(SMTP|SMTP_SSL|LMTP)\s*$/.exec(line);
    if (meta) {
      className = meta[1] as ParsedTranscript['className'];
      continue;
    }
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = /^([SC]):(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`not a transcript line: ${line.slice(0, 80)}`);
    const body = m[2] ?? '';
    if (m[1] === 'S') {
      const directive = /^<(starttls|close|end|reset|delay)(?: (\d+))?>$/.exec(body);
      if (directive) {
        if (directive[1] === 'starttls') steps.push({ kind: 'starttls' });
        else if (directive[1] === 'delay') steps.push({ kind: 'delay', ms: Number(directive[2] ?? 0) });
        else steps.push({ kind: 'close' });
        continue;
      }
      steps.push({ kind: 'send', line: unescapeLine(body) });
    } else {
      steps.push({ kind: 'expect', line: unescapeLine(body) });
    }
  }
  return { className, steps };
}

/** Reverses smtplib's Python-like repr of a debug line. */
function unrepr(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|r|n|t|\\|')/g, (_, e: string) =>
    e === 'r' ? '\r' : e === 'n' ? '\n' : e === 't' ? '\t' : e === '\\' ? '\\' : e === "'" ? "'" : String.fromCharCode(parseInt(e.slice(1), 16)),
  );
}

/** Whether a client line matches a recorded one, "****" standing for any text. */
export function clientLineMatches(recorded: string, actual: string): boolean {
  if (!recorded.includes(REDACTED)) return recorded === actual;
  const pattern = recorded.split(REDACTED).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${pattern}$`, 's').test(actual);
}
