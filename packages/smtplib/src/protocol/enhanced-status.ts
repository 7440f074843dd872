// RFC 3463 enhanced status codes, as RFC 2034 puts them at the start of the
// reply text: class "." subject "." detail, where the class repeats the first
// digit of the reply code (2, 4 or 5).

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;

/** The enhanced status at the start of `text`, if its class matches `code`. */
export function parseEnhancedStatus(code: number, text: string): string | undefined {
  // Hot path (every reply): "2.1.0 ..." with one-digit subject and detail is
  // already in canonical form, and a text that does not start with the
  // class digit and a dot has no status.
  const statusClass = text.charCodeAt(0) - 0x30;
  if (statusClass !== Math.floor(code / 100) || text.charCodeAt(1) !== 0x2e) return undefined;
  if (statusClass !== 2 && statusClass !== 4 && statusClass !== 5) return undefined;
  if (isDigit(text.charCodeAt(2)) && text.charCodeAt(3) === 0x2e && isDigit(text.charCodeAt(4)) && (text.length === 5 || isBlank(text.charCodeAt(5)))) {
    return text.slice(0, 5);
  }
  const match = ENHANCED.exec(text);
  if (!match) return undefined;
  if (Number(match[1]) !== Math.floor(code / 100)) return undefined;
  return `${match[1]}.${Number(match[2])}.${Number(match[3])}`;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** What may follow a status (the regular expression's \s, for the characters a reply line can hold). */
function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
