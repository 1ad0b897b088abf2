/**
 * Blobs as files under one directory: the embedded default. Every write goes to a temp file in the
 * blob's own directory, is synced, then renamed over the key, so readers in any process (API and
 * workers on one machine) see a whole blob or none, and a crash mid-write leaves at most a dot-named
 * temp file, which no key can name and deleteScope removes with its scope.
 *
 * With encryption keys, every blob is sealed with the first one as it is written (src/crypto/sealed-blob.ts)
 * and opened with whichever sealed it; a blob stored before there were keys reads as it is. Content
 * addresses stay the SHA-256 of the plain bytes: the same document is the same document under any key.
 */
import { randomUUID } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { KeyRing, type EncryptionKey } from '../crypto/key-ring';
import { isSealed, openingStream, openSealed, sealChunks, sealedPlainSize, HEADER_MAX_BYTES } from '../crypto/sealed-blob';
import { type BlobBody, writeHashed } from './hashed-write';
import { checkBlobKey, isBlobKey } from './keys';
import { BlobNotFoundError, type BlobRef, type BlobStore } from './store';

const MISSING = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
const isMissing = (err: unknown) => MISSING.has((err as NodeJS.ErrnoException).code ?? '');

export class FileBlobStore implements BlobStore {
  private readonly ring: KeyRing;

  constructor(
    private readonly dir: string,
    keys: readonly EncryptionKey[],
  ) {
    this.ring = new KeyRing(keys);
  }

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
    let stored: Buffer;
    try {
      stored = await fs.readFile(this.pathOf(key));
    } catch (err) {
      throw isMissing(err) ? new BlobNotFoundError(key) : err;
    }
    return isSealed(stored) ? openSealed(this.ring, stored) : stored;
  }

  async stream(key: string): Promise<Readable> {
    const opened = await this.openFile(key);
    if (!opened) throw new BlobNotFoundError(key);
    const stored = opened.handle.createReadStream({ start: 0 });
    if (!isSealed(opened.head)) return stored;
    const plain = openingStream(this.ring);
    // An error on either side (a read error, a segment that fails authentication) ends the plain stream with it.
    pipeline(stored, plain, () => undefined);
    return plain;
  }

  async size(key: string): Promise<number | null> {
    const opened = await this.openFile(key);
    if (!opened) return null;
    const { size } = await opened.handle.stat();
    await opened.handle.close();
    return isSealed(opened.head) ? sealedPlainSize(opened.head, size) : size;
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

  /** The blob's file, open, and its first bytes (enough for a sealed blob's header); null when there is no such blob. */
  private async openFile(key: string): Promise<{ handle: FileHandle; head: Buffer } | null> {
    let handle: FileHandle;
    try {
      handle = await fs.open(this.pathOf(key), 'r');
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    try {
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        return null;
      }
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(HEADER_MAX_BYTES), 0, HEADER_MAX_BYTES, 0);
      return { handle, head: buffer.subarray(0, bytesRead) };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  private async writeThenRename(
    dir: string,
    body: BlobBody,
    maxBytes: number | undefined,
    target: (sha256: string) => { key: string; file: string },
  ): Promise<BlobRef> {
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.tmp-${randomUUID()}`);
    const sealWith = this.ring.current;
    const seal = sealWith && ((plain: AsyncIterable<Uint8Array>) => sealChunks(sealWith, plain));
    const { sha256, size } = await writeHashed(tmp, body, { maxBytes, durable: true, seal });
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
