/**
 * The encryption keys, by id: the first one encrypts, every one decrypts, so a new key is added in front
 * and the old ones stay until nothing written under them is read any more. AES-256-GCM, a fresh random
 * 12-byte nonce per message; what is sealed carries the id of its key, so a reader picks the right one.
 * Pure: the payload codec (src/temporal/codec.ts) and the file blob store both build on it.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SwitchyardError } from '../errors';

export interface EncryptionKey {
  /** Names the key in what it sealed: letters, digits, `.`, `_`, `-`. */
  id: string;
  /** 32 bytes (AES-256). */
  key: Buffer;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const CIPHER = 'aes-256-gcm';

/** Sealed data names a key this ring does not hold. */
export class UnknownEncryptionKeyError extends SwitchyardError {
  override readonly name = 'UnknownEncryptionKeyError';
  readonly code = 'unknown-encryption-key';
  constructor(
    readonly keyId: string,
    held: readonly string[],
  ) {
    super(
      `encrypted with key "${keyId}", which SWITCHYARD_ENCRYPTION_KEYS does not hold` +
        (held.length ? ` (it holds ${held.map((id) => `"${id}"`).join(', ')})` : ' (it is empty)'),
    );
  }
}

/** GCM's authentication failed: the data was altered, cut short, or sealed by another key under the same id. */
export class DecryptionFailedError extends SwitchyardError {
  override readonly name = 'DecryptionFailedError';
  readonly code = 'decryption-failed';
  /** `keyId` null: the data ends before it says which key sealed it. */
  constructor(readonly keyId: string | null) {
    super(
      keyId === null
        ? 'encrypted data ends before it names its key: it was cut short'
        : `data encrypted with key "${keyId}" failed authentication: it was altered, or that id names a different key here`,
    );
  }
}

/**
 * `id:base64,id:base64` (SWITCHYARD_ENCRYPTION_KEYS) as keys, or the problems with it — each naming the
 * entry, never the key material.
 */
export function parseEncryptionKeys(raw: string): { keys: EncryptionKey[]; problems: string[] } {
  const keys: EncryptionKey[] = [];
  const problems: string[] = [];
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  entries.forEach((entry, i) => {
    const at = entry.indexOf(':');
    const id = at < 0 ? '' : entry.slice(0, at);
    const encoded = entry.slice(at + 1);
    const where = `entry ${i + 1}${KEY_ID.test(id) ? ` ("${id}")` : ''}`;
    if (!KEY_ID.test(id)) return problems.push(`${where}: entries are id:base64, the id of letters, digits . _ - (at most 64)`);
    if (keys.some((k) => k.id === id)) return problems.push(`${where}: the id is listed twice`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0)
      return problems.push(`${where}: the key is not base64 (make one with: openssl rand -base64 32)`);
    const key = Buffer.from(encoded, 'base64');
    if (key.length !== KEY_BYTES) return problems.push(`${where}: the key is ${key.length} bytes; AES-256 needs ${KEY_BYTES}`);
    keys.push({ id, key });
  });
  return { keys, problems };
}

/** A new key as SWITCHYARD_ENCRYPTION_KEYS writes it: `id:base64`. */
export const newKeyEntry = (id: string): string => `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;

export class KeyRing {
  constructor(readonly keys: readonly EncryptionKey[]) {}

  /** The key new data is encrypted with; undefined when there are none (nothing is encrypted then). */
  get current(): EncryptionKey | undefined {
    return this.keys[0];
  }

  /** The key named `id`; UnknownEncryptionKeyError if this ring does not hold it. */
  get(id: string): EncryptionKey {
    const found = this.keys.find((k) => k.id === id);
    if (!found)
      throw new UnknownEncryptionKeyError(
        id,
        this.keys.map((k) => k.id),
      );
    return found;
  }
}

/** nonce ‖ ciphertext ‖ tag. `aad` is authenticated, not stored: the reader passes the same. */
export function seal(key: EncryptionKey, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  return Buffer.concat([nonce, sealWithNonce(key, nonce, plaintext, aad)]);
}

/** What seal() made, back; DecryptionFailedError if it was altered or `key` is not the one that sealed it. */
export function open(key: EncryptionKey, sealed: Uint8Array, aad: Uint8Array): Buffer {
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (bytes.length < NONCE_BYTES + TAG_BYTES) throw new DecryptionFailedError(key.id);
  return openWithNonce(key, bytes.subarray(0, NONCE_BYTES), bytes.subarray(NONCE_BYTES), aad);
}

/** Ciphertext ‖ tag under a nonce the caller makes unique (sealed blobs count their segments). */
export function sealWithNonce(key: EncryptionKey, nonce: Buffer, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const cipher = createCipheriv(CIPHER, key.key, nonce);
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** The inverse of sealWithNonce; DecryptionFailedError if authentication fails. */
export function openWithNonce(key: EncryptionKey, nonce: Buffer, sealed: Buffer, aad: Uint8Array): Buffer {
  if (sealed.length < TAG_BYTES) throw new DecryptionFailedError(key.id);
  const decipher = createDecipheriv(CIPHER, key.key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new DecryptionFailedError(key.id);
  }
}

export const GCM_TAG_BYTES = TAG_BYTES;
export const GCM_NONCE_BYTES = NONCE_BYTES;
