// The core's folders form layers, and an import may only point to its own
// layer or a lower one: the client is built on the session, the session on the
// wire, everything on the protocol's data types. A module that reaches up (a
// protocol helper importing from the client, DKIM from the client while the
// client imports DKIM) ties the layers into a knot that no one can read or
// test alone; this test names any import that does.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(new URL('../../packages/smtplib/src', import.meta.url).pathname);

/** Lowest first. The folder's own files (errors, diagnostics, known-keys) are the base with the protocol types. */
const LAYERS: Record<string, number> = {
  '.': 0,
  protocol: 0,
  message: 1,
  wire: 1,
  auth: 1,
  session: 2,
  dkim: 2,
  oauth: 2,
  client: 3,
  pool: 4,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}

function layerOf(file: string): string {
  const folder = relative(SRC, dirname(file)).split('/')[0] || '.';
  return folder;
}

describe('packages/smtplib/src layering', () => {
  it('every folder has a layer', () => {
    const folders = new Set(sources(SRC).map(layerOf));
    expect([...folders].filter((f) => !(f in LAYERS))).toEqual([]);
  });

  it('no import points to a higher layer (index.ts, the entry point, excepted)', () => {
    const upward: string[] = [];
    for (const file of sources(SRC)) {
      if (relative(SRC, file) === 'index.ts') continue;
      const from = layerOf(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
        const to = layerOf(target);
        if (LAYERS[to]! > LAYERS[from]!) upward.push(`${relative(SRC, file)} -> ${relative(SRC, target)} (${from} ${LAYERS[from]} -> ${to} ${LAYERS[to]})`);
      }
    }
    expect(upward).toEqual([]);
  });
});
