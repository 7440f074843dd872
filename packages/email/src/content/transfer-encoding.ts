// Content-Transfer-Encoding (RFC 2045 §6): choosing one for a text,
// quoted-printable in both directions and base64 decoding (base64 encoding
// is content/base64-lines.ts). The encoder writes lines of at most 76
// characters; decoders are tolerant and report what they had to skip, so the
// parser can record Python's defects.

import type { DefectKind } from '../defects.js';
import type { Policy } from '../policy.js';

export type TransferEncoding = '7bit' | '8bit' | 'binary' | 'quoted-printable' | 'base64';

const QP_LINE = 76;

/** Splits a text into lines (any of CRLF, CR, LF end a line); a final line end adds no empty line. */
export function textLines(text: string): string[] {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Python's choice in email.contentmanager: 7bit, 8bit (if the policy allows), else the shorter of QP and base64. */
export function chooseTextEncoding(lines: readonly Buffer[], policy: Policy): TransferEncoding {
  let longest = 0;
  let ascii = true;
  for (const line of lines) {
    if (line.length > longest) longest = line.length;
    if (ascii) for (const b of line) if (b > 0x7f) { ascii = false; break; }
  }
  if (longest <= policy.maxLineLength) {
    if (ascii) return '7bit';
    if (policy.cteType === '8bit') return '8bit';
  }
  let qpLength = 0;
  let total = 0;
  for (const line of lines) {
    total += line.length + 2;
    for (const b of line) qpLength += b > 0x7e || b === 0x3d || (b < 0x20 && b !== 0x09) ? 3 : 1;
    qpLength += 3 + Math.floor(line.length / QP_LINE) * 3;
  }
  return qpLength > Math.ceil(total / 3) * 4 * (78 / 76) ? 'base64' : 'quoted-printable';
}

function hex(b: number): string {
  return '=' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
}

/** Quoted-printable of text lines (RFC 2045 §6.7), joined with `linesep`, ending with it. */
export function encodeQuotedPrintableLines(lines: readonly Buffer[], linesep: string): string {
  let out = '';
  for (const line of lines) {
    let current = '';
    for (let i = 0; i < line.length; i++) {
      const b = line[i]!;
      const last = i === line.length - 1;
      let piece: string;
      if (b === 0x3d || b > 0x7e || (b < 0x20 && b !== 0x09) || (last && (b === 0x20 || b === 0x09))) piece = hex(b);
      // A leading '.' or "From " is encoded so no transport or mbox rewrites it.
      else if (current === '' && (b === 0x2e || (b === 0x46 && line.subarray(i, i + 5).toString('latin1') === 'From '))) piece = hex(b);
      else piece = String.fromCharCode(b);
      if (current.length + piece.length > QP_LINE - 1) {
        out += current + '=' + linesep;
        current = '';
      }
      current += piece;
    }
    out += current + linesep;
  }
  return out;
}

export interface DecodeOutcome {
  bytes: Buffer;
  defects: { kind: DefectKind; message: string }[];
}

/** Tolerant base64: skips characters outside the alphabet and fixes padding, reporting both. */
export function decodeBase64(data: Buffer): DecodeOutcome {
  const defects: DecodeOutcome['defects'] = [];
  const text = data.toString('latin1');
  const clean = text.replace(/[^A-Za-z0-9+/=]/g, (ch) => {
    if (!/\s/.test(ch) && !defects.some((d) => d.kind === 'InvalidBase64CharactersDefect')) {
      defects.push({ kind: 'InvalidBase64CharactersDefect', message: 'characters outside the base64 alphabet were skipped' });
    }
    return '';
  });
  const body = clean.replace(/=+$/, '');
  if (body.includes('=')) defects.push({ kind: 'InvalidBase64PaddingDefect', message: 'padding in the middle of base64 data' });
  const unpadded = body.replace(/=/g, '');
  if (unpadded.length % 4 === 1) {
    defects.push({ kind: 'InvalidBase64LengthDefect', message: 'base64 data ends with a lone character, which was dropped' });
  } else if (unpadded.length % 4 !== 0 && clean.length === body.length) {
    defects.push({ kind: 'InvalidBase64PaddingDefect', message: 'base64 data is missing its padding' });
  }
  return { bytes: Buffer.from(unpadded, 'base64'), defects };
}

/** Quoted-printable decoding (soft line breaks removed, malformed escapes kept as written). */
export function decodeQuotedPrintable(data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  let n = 0;
  const isHex = (b: number | undefined): boolean => b !== undefined && ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66));
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === 0x3d) {
      // Soft line break: '=' then optional white space then a line end.
      let j = i + 1;
      while (data[j] === 0x20 || data[j] === 0x09) j++;
      if (data[j] === 0x0d && data[j + 1] === 0x0a) { i = j + 1; continue; }
      if (data[j] === 0x0a) { i = j; continue; }
      if (j >= data.length) { i = j; continue; }
      if (isHex(data[i + 1]) && isHex(data[i + 2])) {
        out[n++] = parseInt(String.fromCharCode(data[i + 1]!, data[i + 2]!), 16);
        i += 2;
        continue;
      }
    }
    // Trailing white space before a line end was added in transport (RFC 2045 §6.7 (3)).
    // The run is scanned once: dropped before a line end, copied whole otherwise.
    if (b === 0x20 || b === 0x09) {
      let j = i;
      while (data[j] === 0x20 || data[j] === 0x09) j++;
      if (!(data[j] === 0x0d || data[j] === 0x0a)) {
        data.copy(out, n, i, j);
        n += j - i;
      }
      i = j - 1;
      continue;
    }
    out[n++] = b;
  }
  return out.subarray(0, n);
}
