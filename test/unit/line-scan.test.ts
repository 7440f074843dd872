import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('line-scan-wasm.ts', () => {
  it('is the current build of line-scan.wat (node scripts/build-wasm.mjs)', () => {
    // --check exits 1 (and execFileSync throws) when the committed bytes differ from the source's.
    expect(() => execFileSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
  });
});
