/**
 * Blobs sealed at rest with the key ring, in a form that streams both ways: a header naming the key, then
 * the bytes in segments of 64 KiB, each sealed on its own (AES-256-GCM) under a key derived for this blob
 * alone (HKDF over a random salt), its nonce the segment's number and the last one marked in its
 * authenticated data. A reader checks each segment before handing it on, and a blob that was altered,
 * cut short, reordered or spliced from another fails.
 *
 *   header   "\0sealed1" | id length (1 byte) | key id | salt (16 bytes)
 *   segments ciphertext ‖ tag, all of SEGMENT_BYTES plaintext but the last (0 to SEGMENT_BYTES)
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import {
  DecryptionFailedError,
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  openWithNonce,
  sealWithNonce,
  type EncryptionKey,
  type KeyRing,
} from './key-ring';

/** No text upload starts with a NUL byte, so a blob stored before encryption was turned on is not taken for a sealed one. */
const MAGIC = Buffer.from('\0sealed1', 'latin1');
const SALT_BYTES = 16;
export const SEGMENT_BYTES = 64 * 1024;
const SEGMENT_STORED = SEGMENT_BYTES + GCM_TAG_BYTES;
/** Enough of a file to hold any header. */
export const HEADER_MAX_BYTES = MAGIC.length + 1 + 255 + SALT_BYTES;

interface Header {
  bytes: Buffer;
  /** The blob's own key, derived from the ring's key and the salt. */
  key: EncryptionKey;
}

const blobKey = (key: EncryptionKey, salt: Buffer): EncryptionKey => ({
  id: key.id,
  key: Buffer.from(hkdfSync('sha256', key.key, salt, 'switchyard sealed blob v1', 32)),
});

function nonceOf(index: number): Buffer {
  const nonce = Buffer.alloc(GCM_NONCE_BYTES);
  nonce.writeUInt32BE(index, GCM_NONCE_BYTES - 4);
  return nonce;
}

/** The header authenticates every segment, and a flag says whether the segment is the last. */
const aadOf = (header: Buffer, last: boolean) => Buffer.concat([header, Buffer.from([last ? 1 : 0])]);

/** Whether stored bytes (their first HEADER_MAX_BYTES are enough) are a sealed blob rather than plain ones. */
export const isSealed = (head: Uint8Array): boolean =>
  Buffer.from(head.buffer, head.byteOffset, head.byteLength).subarray(0, MAGIC.length).equals(MAGIC);

/** The header at the start of `bytes`, or undefined when it has not all arrived yet. */
function readHeader(bytes: Buffer, ring: KeyRing): Header | undefined {
  if (bytes.length < MAGIC.length + 1) return undefined;
  const idLength = bytes[MAGIC.length]!;
  const length = MAGIC.length + 1 + idLength + SALT_BYTES;
  if (bytes.length < length) return undefined;
  const id = bytes.subarray(MAGIC.length + 1, MAGIC.length + 1 + idLength).toString('latin1');
  return { bytes: bytes.subarray(0, length), key: blobKey(ring.get(id), bytes.subarray(length - SALT_BYTES, length)) };
}

/** `plain` sealed with `key`, as it streams: never more than two segments in memory. */
export async function* sealChunks(key: EncryptionKey, plain: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const salt = randomBytes(SALT_BYTES);
  const id = Buffer.from(key.id, 'latin1');
  const header = Buffer.concat([MAGIC, Buffer.from([id.length]), id, salt]);
  const own = blobKey(key, salt);
  yield header;
  let pending = Buffer.alloc(0);
  let index = 0;
  for await (const chunk of plain) {
    pending = Buffer.concat([pending, chunk]);
    // Strictly more than a segment: the last one, full or not, is sealed as the last.
    while (pending.length > SEGMENT_BYTES) {
      yield sealWithNonce(own, nonceOf(index++), pending.subarray(0, SEGMENT_BYTES), aadOf(header, false));
      pending = pending.subarray(SEGMENT_BYTES);
    }
  }
  yield sealWithNonce(own, nonceOf(index), pending, aadOf(header, true));
}

/** A whole sealed blob's plain bytes. */
export function openSealed(ring: KeyRing, stored: Buffer): Buffer {
  const header = readHeader(stored, ring);
  if (!header) throw new DecryptionFailedError(null);
  const parts: Buffer[] = [];
  let rest = stored.subarray(header.bytes.length);
  for (let index = 0; ; index++) {
    const last = rest.length <= SEGMENT_STORED;
    parts.push(openWithNonce(header.key, nonceOf(index), rest.subarray(0, SEGMENT_STORED), aadOf(header.bytes, last)));
    if (last) return Buffer.concat(parts);
    rest = rest.subarray(SEGMENT_STORED);
  }
}

/** Sealed bytes in, plain bytes out, each segment checked before it is passed on. */
export function openingStream(ring: KeyRing): Transform {
  let pending = Buffer.alloc(0);
  let header: Header | undefined;
  let index = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      pending = Buffer.concat([pending, chunk]);
      try {
        if (!header) {
          header = readHeader(pending, ring);
          if (!header) return done();
          pending = pending.subarray(header.bytes.length);
        }
        while (pending.length > SEGMENT_STORED) {
          this.push(openWithNonce(header.key, nonceOf(index++), pending.subarray(0, SEGMENT_STORED), aadOf(header.bytes, false)));
          pending = pending.subarray(SEGMENT_STORED);
        }
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done) {
      try {
        if (!header) throw new DecryptionFailedError(null);
        done(null, openWithNonce(header.key, nonceOf(index), pending, aadOf(header.bytes, true)));
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/** The plain size of a sealed blob of `storedSize` bytes that starts with `head`. */
export function sealedPlainSize(head: Buffer, storedSize: number): number {
  const body = storedSize - (MAGIC.length + 1 + head[MAGIC.length]! + SALT_BYTES);
  return body - GCM_TAG_BYTES * Math.max(1, Math.ceil(body / SEGMENT_STORED));
}
