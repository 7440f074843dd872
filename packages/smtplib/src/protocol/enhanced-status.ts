// RFC 3463 enhanced status codes, as RFC 2034 puts them at the start of the
// reply text: class "." subject "." detail, where the class repeats the first
// digit of the reply code (2, 4 or 5).

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;

/** The enhanced status at the start of `text`, if its class matches `code`. */
export function parseEnhancedStatus(code: number, text: string): string | undefined {
  const match = ENHANCED.exec(text);
  if (!match) return undefined;
  if (Number(match[1]) !== Math.floor(code / 100)) return undefined;
  return `${match[1]}.${Number(match[2])}.${Number(match[3])}`;
}
