/**
 * Blobs at rest: the file store seals what it writes with the first key (src/crypto/sealed-blob.ts) and
 * opens it with whichever key sealed it — whole, streamed and measured, at every segment boundary — refuses
 * a blob that was altered, cut short or spliced, reads blobs stored before there were keys, and keeps
 * content addresses those of the plain bytes. The S3 store asks for server-side encryption on every write,
 * which a real S3-compatible server (moto) records and reports back.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createBlobStore, type BlobStore } from '../../src/blobs';
import type { S3Settings } from '../../src/blobs/s3-store';
import { DecryptionFailedError, newKeyEntry, parseEncryptionKeys, UnknownEncryptionKeyError } from '../../src/crypto/key-ring';
import { SEGMENT_BYTES } from '../../src/crypto/sealed-blob';
import { startMoto, type Moto } from '../../testkit/moto';

const TEXT = 'The merger with Globex closes on the 14th; tell no one.';
const OLD = parseEncryptionKeys(newKeyEntry('old')).keys;
const NEW = parseEncryptionKeys(newKeyEntry('new')).keys;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** `n` bytes that differ along their length. */
const bytesOf = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + 7) % 256));
async function* inPieces(bytes: Buffer, piece = 10_000): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += piece) yield bytes.subarray(at, at + piece);
}

describe('the file store, with encryption keys', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-sealed-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = (keys = OLD): BlobStore => createBlobStore({ kind: 'file', dir, keys });
  const fileOf = (key: string) => path.join(dir, ...key.split('/'));
  let n = 0;
  const fresh = () => `jobs/acme/sealed-${++n}`;

  it('keeps none of the text on disk, and gives it back whole, streamed and by size', async () => {
    const key = `${fresh()}/record.json`;
    const ref = await store().putAt(key, JSON.stringify({ text: TEXT }));
    const onDisk = fs.readFileSync(fileOf(key));
    assert.ok(!onDisk.includes('Globex'), 'the text is not on disk');
    assert.equal(ref.sha256, sha(Buffer.from(JSON.stringify({ text: TEXT }))), 'the hash is of the plain bytes');
    assert.equal(JSON.parse((await store().get(key)).toString()).text, TEXT);
    assert.equal(JSON.parse((await buffer(await store().stream(key))).toString()).text, TEXT);
    assert.equal(await store().size(key), ref.size);
  });

  it('reads every size around the segment boundaries back exactly', async () => {
    const scope = fresh();
    for (const size of [0, 1, SEGMENT_BYTES - 1, SEGMENT_BYTES, SEGMENT_BYTES + 1, 2 * SEGMENT_BYTES, 3 * SEGMENT_BYTES + 5]) {
      const bytes = bytesOf(size);
      const key = `${scope}/${size}`;
      await store().putAt(key, bytes);
      assert.ok((await store().get(key)).equals(bytes), `get of ${size} bytes`);
      assert.ok((await buffer(await store().stream(key))).equals(bytes), `stream of ${size} bytes`);
      assert.equal(await store().size(key), size, `size of ${size} bytes`);
    }
  });

  it('stores a streamed upload under the hash of its plain bytes: the same address as without keys', async () => {
    const bytes = bytesOf(5 * SEGMENT_BYTES + 123);
    const scope = fresh();
    const sealed = await store().putContent(scope, inPieces(bytes));
    const plain = await createBlobStore({
      kind: 'file',
      dir: fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-plain-')),
      keys: [],
    }).putContent(scope, inPieces(bytes));
    assert.deepEqual(sealed, plain);
    assert.ok((await store().get(sealed.key)).equals(bytes));
  });

  describe('refuses a blob that is not as it was sealed', () => {
    const sealedBlob = async () => {
      const key = `${fresh()}/three-segments`;
      await store().putAt(key, bytesOf(2 * SEGMENT_BYTES + 100));
      return { key, file: fileOf(key), stored: fs.readFileSync(fileOf(key)) };
    };
    const refused = async (key: string) => {
      await assert.rejects(store().get(key), DecryptionFailedError);
      await assert.rejects(store().stream(key).then(buffer), DecryptionFailedError);
    };

    it('a byte altered', async () => {
      const { key, file, stored } = await sealedBlob();
      stored.writeUInt8(stored.readUInt8(SEGMENT_BYTES + 50) ^ 0x80, SEGMENT_BYTES + 50);
      fs.writeFileSync(file, stored);
      await refused(key);
    });

    it('its last segment cut off', async () => {
      const { key, file, stored } = await sealedBlob();
      fs.writeFileSync(file, stored.subarray(0, stored.length - 116));
      await refused(key);
    });

    it('two segments swapped', async () => {
      const { key, file, stored } = await sealedBlob();
      const segment = SEGMENT_BYTES + 16;
      const header = stored.length - 2 * segment - 116;
      const swapped = Buffer.concat([
        stored.subarray(0, header),
        stored.subarray(header + segment, header + 2 * segment),
        stored.subarray(header, header + segment),
        stored.subarray(header + 2 * segment),
      ]);
      fs.writeFileSync(file, swapped);
      await refused(key);
    });
  });

  it('rotation: blobs sealed with the old key read after a new one is put in front, which seals from then on', async () => {
    const key = `${fresh()}/old`;
    await store(OLD).putAt(key, TEXT);
    const rotated = store([...NEW, ...OLD]);
    assert.equal((await rotated.get(key)).toString(), TEXT);
    await rotated.putAt(`${key}-new`, TEXT);
    assert.equal((await store(NEW).get(`${key}-new`)).toString(), TEXT, 'written under the new key');
    await assert.rejects(store(NEW).get(key), UnknownEncryptionKeyError);
  });

  it('reads a blob stored before there were keys as it is', async () => {
    const key = `${fresh()}/legacy`;
    await createBlobStore({ kind: 'file', dir, keys: [] }).putAt(key, TEXT);
    assert.equal(fs.readFileSync(fileOf(key), 'utf8'), TEXT);
    assert.equal((await store().get(key)).toString(), TEXT);
    assert.equal(await store().size(key), TEXT.length);
  });

  it('without the key, says which key it needs', async () => {
    const key = `${fresh()}/needs-old`;
    await store(OLD).putAt(key, TEXT);
    await assert.rejects(
      createBlobStore({ kind: 'file', dir, keys: [] }).get(key),
      /key "old", which SWITCHYARD_ENCRYPTION_KEYS does not hold \(it is empty\)/,
    );
  });
});

describe('the S3 store asks for server-side encryption', () => {
  const BUCKET = 'switchyard-sse';
  let moto: Moto;
  let s3: S3Client;
  before(async () => {
    moto = await startMoto();
    await moto.createBucket(BUCKET);
    s3 = new S3Client({
      region: 'us-east-1',
      endpoint: moto.endpoint,
      forcePathStyle: true,
      credentials: moto.settings(BUCKET).credentials,
    });
  });
  after(async () => {
    s3?.destroy();
    await moto?.stop();
  });

  const head = (settings: S3Settings, key: string) => s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: settings.prefix + key }));

  it('SSE-S3 (AES256) by default, on single puts and on streamed multipart uploads', async () => {
    const settings = moto.settings(BUCKET, 'sse-s3/');
    const store = createBlobStore(settings);
    await store.putAt('jobs/acme/one/result.json', TEXT);
    assert.equal((await head(settings, 'jobs/acme/one/result.json')).ServerSideEncryption, 'AES256');
    // Over lib-storage's 5 MB part size: a multipart upload, whose start carries the header.
    const ref = await store.putContent('documents/acme', inPieces(bytesOf(6 * 1024 * 1024), 256 * 1024));
    assert.equal((await head(settings, ref.key)).ServerSideEncryption, 'AES256');
  });

  it('SSE-KMS with the configured key', async () => {
    const kmsKeyId = 'arn:aws:kms:us-east-1:123456789012:key/switchyard-test';
    const settings: S3Settings = { ...moto.settings(BUCKET, 'sse-kms/'), serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId } };
    await createBlobStore(settings).putAt('jobs/acme/two/result.json', TEXT);
    const answer = await head(settings, 'jobs/acme/two/result.json');
    assert.equal(answer.ServerSideEncryption, 'aws:kms');
    assert.equal(answer.SSEKMSKeyId, kmsKeyId);
  });

  it('none when turned off (a server without SSE)', async () => {
    const settings: S3Settings = { ...moto.settings(BUCKET, 'sse-none/'), serverSideEncryption: null };
    await createBlobStore(settings).putAt('jobs/acme/three/result.json', TEXT);
    assert.equal((await head(settings, 'jobs/acme/three/result.json')).ServerSideEncryption, undefined);
  });
});
