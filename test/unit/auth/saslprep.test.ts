import { describe, expect, it } from 'vitest';
import { saslprep } from '../../../packages/smtplib/src/auth/saslprep.js';

describe('SASLprep (RFC 4013 §3 examples, minus the bidi one)', () => {
  it.each([
    ['I\u00ADX', 'IX'], // soft hyphen mapped to nothing
    ['user', 'user'],
    ['USER', 'USER'],
    ['\u00AA', 'a'], // NFKC
    ['\u2168', 'IX'], // NFKC
    ['a\u00A0b\u3000c', 'a b c'], // non-ASCII spaces mapped to SPACE
    ['\u200B', ''], // zero width space mapped to nothing
  ])('%j -> %j', (input, output) => {
    expect(saslprep(input)).toBe(output);
  });

  it.each([
    ['\u0007', 'ASCII control'],
    ['a\u0000b', 'NUL'],
    ['a\u0085', 'non-ASCII control'],
    ['\uE000', 'private use'],
    ['\uFDD0', 'non-character'],
    ['\u{1FFFE}', 'non-character (astral)'],
    ['a\uD800', 'lone surrogate'],
    ['\u200E', 'LRM'],
    ['\u{E0001}', 'language tag'],
  ])('rejects %j (%s)', (input) => {
    expect(() => saslprep(input, 'password')).toThrow(TypeError);
  });
});
