/**
 * The blob store: where documents, chunks and large results live, so that workflow histories carry
 * references and hashes, never large payloads (claim check). Keys are `/`-separated paths inside a
 * scope; a scope is everything one owner keeps (a tenant's uploaded documents, one job's data) and is
 * deleted as a whole. Two implementations: a directory under the data folder (the embedded default) and
 * an S3-compatible bucket.
 */
import type { Readable } from 'node:stream';
import { SwitchyardError } from '../errors';

export interface BlobRef {
  key: string;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  size: number;
}

export class BlobNotFoundError extends SwitchyardError {
  override readonly name = 'BlobNotFoundError';
  readonly code = 'blob-not-found';
  constructor(readonly key: string) {
    super(`blob ${key} does not exist`);
  }
}

/** The upload was larger than the limit it was given; nothing was stored. */
export class BlobTooLargeError extends SwitchyardError {
  override readonly name = 'BlobTooLargeError';
  readonly code = 'blob-too-large';
  constructor(readonly maxBytes: number) {
    super(`more than ${maxBytes} bytes`);
  }
}

export interface BlobStore {
  /**
   * Stores bytes content-addressed: the key is `<scope>/<sha256>`. Storing the same bytes again is a
   * no-op that returns the same ref. A stream is hashed while it is written and never held in memory
   * whole; past `maxBytes` it stops with BlobTooLargeError and leaves nothing behind.
   */
  putContent(scope: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts?: { maxBytes?: number }): Promise<BlobRef>;
  /** Stores bytes at an exact key (named results, manifests), replacing what was there: retries are idempotent. */
  putAt(key: string, body: Uint8Array | string): Promise<BlobRef>;
  /** The bytes at `key`; BlobNotFoundError if there are none. */
  get(key: string): Promise<Buffer>;
  /** The bytes at `key` as a stream, for large results; BlobNotFoundError (rejected) if there are none. */
  stream(key: string): Promise<Readable>;
  /** Size of the blob at `key`, or null when it does not exist. */
  size(key: string): Promise<number | null>;
  /** Deletes the blob at `key` (one uploaded document); returns whether there was one. */
  delete(key: string): Promise<boolean>;
  /** Deletes every blob under `scope`; returns how many there were. */
  deleteScope(scope: string): Promise<number>;
  /** Keys under `scope` (tests and cleanup checks use it). */
  list(scope: string): Promise<string[]>;
}

/** A tenant's uploaded documents: `documents/<tenant>`. */
export const documentScope = (tenant: string): string => `documents/${tenant}`;
/** Everything one job keeps (extracted text, chunks, chunk results, the result): `jobs/<tenant>/<jobId>`. */
export const jobScope = (tenant: string, jobId: string): string => `jobs/${tenant}/${jobId}`;
