// Issue 11, API traps: `const [code, message] = await smtp.noop()` types as [number, string].
// The type half is checked by `tsc --noEmit` over test/ (npm test): the assignments below
// do not compile if the destructured elements are `number | string`.
import { describe, expect, expectTypeOf, it } from 'vitest';
import { Reply } from 'smtplib';

describe('reply destructuring', () => {
  it('const [code, message] = reply types as [number, string] and keeps deep equality', () => {
    const reply = new Reply(250, ['2.0.0 OK', 'second line']);
    const [code, message] = reply;
    const asNumber: number = code;
    const asString: string = message;
    expectTypeOf(code).toEqualTypeOf<number>();
    expectTypeOf(message).toEqualTypeOf<string>();
    expect([asNumber, asString]).toEqual([250, '2.0.0 OK\nsecond line']);
    expect(reply[0]).toBe(250);
    expect(reply[1]).toBe('2.0.0 OK\nsecond line');
    expect(Object.keys(reply)).toEqual(['code', 'message', 'lines', 'enhancedStatus']);
    expect(reply).toEqual({ code: 250, message: '2.0.0 OK\nsecond line', lines: ['2.0.0 OK', 'second line'], enhancedStatus: '2.0.0' });
  });
});
