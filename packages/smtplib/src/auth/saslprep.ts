// A compact SASLprep (RFC 4013, a stringprep profile, RFC 3454) for SCRAM
// user names and passwords. "Lite": it maps, normalizes and prohibits as the
// RFC says, but it does not run the bidirectional-text check (RFC 3454 §6)
// and it treats unassigned code points as allowed (the "query" rules of
// RFC 3454 §7, which is what a client preparing its own input uses).

// RFC 3454 Table B.1, "commonly mapped to nothing".
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/g;

// RFC 3454 Table C.1.2, non-ASCII space characters.
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g;

// RFC 4013 §2.3 prohibited output, by RFC 3454 table:
//   C.2.1 ASCII controls; C.2.2 non-ASCII controls; C.3 private use;
//   C.4 non-character code points; C.5 surrogate codes (lone surrogates);
//   C.6 inappropriate for plain text; C.7 inappropriate for canonical
//   representation; C.8 change display properties / deprecated;
//   C.9 tagging characters. (C.1.2 spaces were mapped to U+0020 already.)
const PROHIBITED = new RegExp(
  [
    '[\\u0000-\\u001f\\u007f]', // C.2.1
    '[\\u0080-\\u009f\\u06dd\\u070f\\u180e\\u200c\\u200d\\u2028\\u2029\\u2060-\\u2063\\u206a-\\u206f\\ufeff\\ufff9-\\ufffc]', // C.2.2
    '[\\u{1d173}-\\u{1d17a}]', // C.2.2 (musical symbols)
    '[\\ue000-\\uf8ff\\u{f0000}-\\u{ffffd}\\u{100000}-\\u{10fffd}]', // C.3
    '[\\ufdd0-\\ufdef\\ufffe\\uffff]', // C.4 (BMP)
    '[\\u{1fffe}\\u{1ffff}\\u{2fffe}\\u{2ffff}\\u{3fffe}\\u{3ffff}\\u{4fffe}\\u{4ffff}\\u{5fffe}\\u{5ffff}\\u{6fffe}\\u{6ffff}\\u{7fffe}\\u{7ffff}\\u{8fffe}\\u{8ffff}\\u{9fffe}\\u{9ffff}\\u{afffe}\\u{affff}\\u{bfffe}\\u{bffff}\\u{cfffe}\\u{cffff}\\u{dfffe}\\u{dffff}\\u{efffe}\\u{effff}\\u{ffffe}\\u{fffff}\\u{10fffe}\\u{10ffff}]', // C.4
    '[\\ud800-\\udfff]', // C.5 (only lone halves can remain under the u flag)
    '[\\ufff9-\\ufffd]', // C.6
    '[\\u2ff0-\\u2ffb]', // C.7
    '[\\u0340\\u0341\\u200e\\u200f\\u202a-\\u202e\\u206a-\\u206f]', // C.8
    '[\\u{e0001}\\u{e0020}-\\u{e007f}]', // C.9
  ].join('|'),
  'u',
);

/**
 * SASLprep a string. Throws a TypeError naming `what` (never the value) when
 * the string contains a prohibited character.
 */
export function saslprep(value: string, what = 'string'): string {
  // Fast path: printable ASCII is unchanged by every step.
  if (/^[\u0020-\u007e]*$/.test(value)) return value;
  // RFC 4013 §2.1 mapping: Table B.1 to nothing, Table C.1.2 to U+0020.
  const mapped = value.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ');
  // RFC 4013 §2.2 normalization: Unicode normalization form KC.
  const normalized = mapped.normalize('NFKC');
  // RFC 4013 §2.3 prohibited output.
  if (PROHIBITED.test(normalized)) {
    throw new TypeError(`${what} contains a character that SASLprep prohibits (control, private-use or similar)`);
  }
  return normalized;
}
