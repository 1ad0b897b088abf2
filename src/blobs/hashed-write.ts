import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { BlobTooLargeError } from './store';

export type BlobBody = Uint8Array | AsyncIterable<Uint8Array>;

async function* chunksOf(body: BlobBody): AsyncIterable<Uint8Array> {
  if (body instanceof Uint8Array) yield body;
  else yield* body;
}

/**
 * Writes `body` to a new file, hashing it on the way and never holding it whole; past `maxBytes` it
 * stops with BlobTooLargeError. The hash and size are those of `body`; with `seal`, the file holds what
 * it makes of the bytes as they pass (the file store encrypts them). With `durable`, the bytes are on
 * disk before this returns (the caller renames the file into place next). On any failure the file is removed.
 */
export async function writeHashed(
  file: string,
  body: BlobBody,
  opts: { maxBytes?: number; durable: boolean; seal?: (plain: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array> },
): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  async function* measured(): AsyncIterable<Uint8Array> {
    for await (const chunk of chunksOf(body)) {
      size += chunk.byteLength;
      if (opts.maxBytes !== undefined && size > opts.maxBytes) throw new BlobTooLargeError(opts.maxBytes);
      hash.update(chunk);
      yield chunk;
    }
  }
  const fh = await fs.open(file, 'wx');
  try {
    for await (const chunk of opts.seal ? opts.seal(measured()) : measured()) {
      for (let written = 0; written < chunk.byteLength;) written += (await fh.write(chunk, written)).bytesWritten;
    }
    if (opts.durable) await fh.datasync();
  } catch (err) {
    await fh.close();
    await fs.rm(file, { force: true });
    throw err;
  }
  await fh.close();
  return { sha256: hash.digest('hex'), size };
}
