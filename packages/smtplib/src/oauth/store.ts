// A refresh token store on disk: one file, mode 0600, replaced atomically
// (write to a temporary file beside it, then rename) so a crash never leaves
// half a token. A file that others can read is refused, as ssh refuses a
// private key with loose permissions.

import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { OAuthError } from './errors.js';
import type { RefreshTokenStore } from './refresh-token.js';

export function fileRefreshTokenStore(path: string): RefreshTokenStore {
  return {
    async load() {
      // node:fs/promises is loaded here, not when smtplib is imported (most programs never use this store).
      const { readFile, stat } = await import('node:fs/promises');
      let info;
      try {
        info = await stat(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
        throw new OAuthError(`${path} can be read by other users (mode ${(info.mode & 0o777).toString(8)}): run chmod 600 ${path}`, { kind: 'config' });
      }
      const text = (await readFile(path, 'utf8')).trim();
      return text === '' ? undefined : text;
    },
    async save(refreshToken: string) {
      const { chmod, open, rename, unlink } = await import('node:fs/promises');
      const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
      const handle = await open(temporary, 'wx', 0o600);
      try {
        await handle.writeFile(`${refreshToken}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        await chmod(temporary, 0o600);
        await rename(temporary, path);
      } catch (error) {
        await unlink(temporary).catch(() => {});
        throw error;
      }
    },
  };
}
