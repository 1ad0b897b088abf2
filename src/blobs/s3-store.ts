/**
 * Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, …), under an optional key prefix. S3 writes
 * are atomic per object, so a reader sees a whole blob or none. Every write asks for server-side
 * encryption (SSE-S3 by default, or SSE-KMS with a configured key) unless the settings turn it off.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config';
import { type BlobBody, writeHashed } from './hashed-write';
import { checkBlobKey } from './keys';
import { BlobNotFoundError, BlobTooLargeError, type BlobRef, type BlobStore } from './store';

export type S3Settings = Extract<Config['blobs'], { kind: 's3' }>;
type S3Encryption = NonNullable<S3Settings['serverSideEncryption']>;

/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;

const isNotFound = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
};

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  /** The server-side encryption parameters of every write. */
  private readonly encryption: { ServerSideEncryption?: S3Encryption['algorithm']; SSEKMSKeyId?: string };

  constructor(private readonly settings: S3Settings) {
    const sse = settings.serverSideEncryption;
    this.encryption = sse ? { ServerSideEncryption: sse.algorithm, SSEKMSKeyId: sse.kmsKeyId } : {};
    this.client = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint,
      forcePathStyle: settings.forcePathStyle,
      credentials: settings.credentials,
      // Integrity is our own SHA-256; the SDK's default extra checksums are not understood by every
      // S3-compatible server, so they are sent only where the API requires them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /**
   * The key is the hash, which is known only at the end, and S3 cannot rename. So a stream is first
   * spooled to a local temp file while it is hashed and measured, then uploaded once to its final key
   * (skipped when that key already holds it). The alternative, uploading to a temp key and copying,
   * costs a server-side copy and leaves orphans in the bucket when a worker dies mid-way; the spool
   * costs local disk up to `maxBytes` and is removed whatever happens.
   */
  async putContent(scope: string, body: BlobBody, opts: { maxBytes?: number } = {}): Promise<BlobRef> {
    checkBlobKey(scope);
    if (body instanceof Uint8Array) {
      if (opts.maxBytes !== undefined && body.byteLength > opts.maxBytes) throw new BlobTooLargeError(opts.maxBytes);
      const { sha256, size } = digest(body);
      const key = `${scope}/${sha256}`;
      if ((await this.size(key)) === null) await this.putAt(key, body);
      return { key, sha256, size };
    }
    const spool = path.join(os.tmpdir(), `switchyard-blob-${randomUUID()}`);
    try {
      const { sha256, size } = await writeHashed(spool, body, { maxBytes: opts.maxBytes, durable: false });
      const key = `${scope}/${sha256}`;
      if ((await this.size(key)) === null) {
        // lib-storage sends parts of 5 MB (each retried on its own), or one PutObject when smaller.
        await new Upload({
          client: this.client,
          params: { Bucket: this.settings.bucket, Key: this.objectKey(key), Body: createReadStream(spool), ...this.encryption },
        }).done();
      }
      return { key, sha256, size };
    } finally {
      await fs.rm(spool, { force: true });
    }
  }

  async putAt(key: string, body: Uint8Array | string): Promise<BlobRef> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    await this.client.send(
      new PutObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key), Body: bytes, ...this.encryption }),
    );
    return { key, ...digest(bytes) };
  }

  async get(key: string): Promise<Buffer> {
    const body = await this.getBody(key);
    const bytes = await body.transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async stream(key: string): Promise<Readable> {
    // In Node the SDK's response body is the HTTP response stream itself.
    return (await this.getBody(key)) as unknown as Readable;
  }

  async size(key: string): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<boolean> {
    // DeleteObject succeeds whether or not the key exists, so whether there was one is asked first.
    if ((await this.size(key)) === null) return false;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }));
    return true;
  }

  async deleteScope(scope: string): Promise<number> {
    const keys = await this.list(scope);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH).map((key) => ({ Key: this.objectKey(key) }));
      const out = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.settings.bucket, Delete: { Objects: batch, Quiet: true } }),
      );
      const failed = out.Errors ?? [];
      if (failed.length)
        throw new Error(
          `could not delete ${failed.length} blobs under ${scope}: ${failed[0]?.Key} ${failed[0]?.Code} ${failed[0]?.Message}`,
        );
    }
    return keys.length;
  }

  async list(scope: string): Promise<string[]> {
    const prefix = `${this.objectKey(scope)}/`;
    const keys: string[] = [];
    for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.settings.bucket, Prefix: prefix })) {
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key.slice(this.settings.prefix.length));
    }
    return keys.sort();
  }

  private objectKey(key: string): string {
    return this.settings.prefix + checkBlobKey(key);
  }

  private async getBody(key: string) {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) }));
      if (!out.Body) throw new BlobNotFoundError(key);
      return out.Body;
    } catch (err) {
      throw isNotFound(err) ? new BlobNotFoundError(key) : err;
    }
  }
}

const digest = (bytes: Uint8Array) => ({ sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.byteLength });
