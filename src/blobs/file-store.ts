/**
 * Blobs as files under one directory: the embedded default. Every write goes to a temp file in the
 * blob's own directory, is synced, then renamed over the key, so readers in any process (API and
 * workers on one machine) see a whole blob or none, and a crash mid-write leaves at most a dot-named
 * temp file, which no key can name and deleteScope removes with its scope.
 */
import { randomUUID } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { type BlobBody, writeHashed } from './hashed-write';
import { checkBlobKey, isBlobKey } from './keys';
import { BlobNotFoundError, type BlobRef, type BlobStore } from './store';

const MISSING = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
const isMissing = (err: unknown) => MISSING.has((err as NodeJS.ErrnoException).code ?? '');

export class FileBlobStore implements BlobStore {
  constructor(private readonly dir: string) {}

  async putContent(scope: string, body: BlobBody, opts: { maxBytes?: number } = {}): Promise<BlobRef> {
    const dir = this.pathOf(scope);
    return this.writeThenRename(dir, body, opts.maxBytes, (sha256) => ({ key: `${scope}/${sha256}`, file: path.join(dir, sha256) }));
  }

  async putAt(key: string, body: Uint8Array | string): Promise<BlobRef> {
    const file = this.pathOf(key);
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    return this.writeThenRename(path.dirname(file), bytes, undefined, () => ({ key, file }));
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.pathOf(key));
    } catch (err) {
      throw isMissing(err) ? new BlobNotFoundError(key) : err;
    }
  }

  async stream(key: string): Promise<Readable> {
    let handle: FileHandle;
    try {
      handle = await fs.open(this.pathOf(key), 'r');
    } catch (err) {
      throw isMissing(err) ? new BlobNotFoundError(key) : err;
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new BlobNotFoundError(key);
    }
    return handle.createReadStream();
  }

  async size(key: string): Promise<number | null> {
    try {
      const stat = await fs.stat(this.pathOf(key));
      return stat.isFile() ? stat.size : null;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      await fs.unlink(this.pathOf(key));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  async deleteScope(scope: string): Promise<number> {
    const keys = await this.list(scope);
    // maxRetries: a writer in another process may be renaming a file into the scope meanwhile.
    await fs.rm(this.pathOf(scope), { recursive: true, force: true, maxRetries: 3 });
    return keys.length;
  }

  async list(scope: string): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
        if (isMissing(err)) return [];
        throw err;
      });
      for (const entry of entries) {
        const key = `${prefix}/${entry.name}`;
        if (!isBlobKey(key)) continue; // a temp file
        if (entry.isDirectory()) await walk(path.join(dir, entry.name), key);
        else if (entry.isFile()) keys.push(key);
      }
    };
    await walk(this.pathOf(scope), scope);
    return keys.sort();
  }

  private pathOf(key: string): string {
    return path.join(this.dir, ...checkBlobKey(key).split('/'));
  }

  private async writeThenRename(
    dir: string,
    body: BlobBody,
    maxBytes: number | undefined,
    target: (sha256: string) => { key: string; file: string },
  ): Promise<BlobRef> {
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.tmp-${randomUUID()}`);
    const { sha256, size } = await writeHashed(tmp, body, { maxBytes, durable: true });
    const { key, file } = target(sha256);
    try {
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    return { key, sha256, size };
  }
}
