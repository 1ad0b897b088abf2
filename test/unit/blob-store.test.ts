import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { BlobNotFoundError, BlobTooLargeError, createBlobStore, InvalidBlobKeyError, type BlobStore } from '../../src/blobs';
import { newKeyEntry, parseEncryptionKeys } from '../../src/crypto/key-ring';
import { startMoto, type Moto } from '../../testkit/moto';

const ROOT = path.resolve(__dirname, '../..');
const sha = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/** `total` bytes that vary along their length, in `chunk`-byte pieces, as an upload stream would arrive. */
async function* pieces(total: number, chunk = 64 * 1024): AsyncIterable<Uint8Array> {
  const bytes = Buffer.alloc(total);
  for (let i = 0; i < total; i++) bytes[i] = (i * 7919) % 251;
  for (let sent = 0; sent < total; sent += chunk) yield bytes.subarray(sent, Math.min(total, sent + chunk));
}
const collect = async (source: AsyncIterable<Uint8Array>) => {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
};

let scopes = 0;
/** A fresh scope per test, so tests never see each other's blobs. */
const freshScope = () => `jobs/acme/job-${process.pid}-${++scopes}`;

/** The same cases for every BlobStore implementation; `open` is called once the enclosing suite has started. */
function blobStoreContract(open: () => BlobStore) {
  describe('the BlobStore contract', () => {
    let store: BlobStore;
    before(() => (store = open()));

    it('stores bytes under their hash, reads them back whole, as a stream and by size', async () => {
      const scope = freshScope();
      const bytes = Buffer.from('The quick brown fox. ✓\n');
      const ref = await store.putContent(scope, bytes);
      assert.deepEqual(ref, { key: `${scope}/${sha(bytes)}`, sha256: sha(bytes), size: bytes.length });
      assert.deepEqual(await store.get(ref.key), bytes);
      assert.equal(await text(await store.stream(ref.key)), bytes.toString());
      assert.equal(await store.size(ref.key), bytes.length);
    });

    it('hashes a 6 MB stream while storing it; the same bytes again are the same blob', async () => {
      const scope = freshScope();
      const whole = await collect(pieces(6 * 1024 * 1024));
      const streamed = await store.putContent(scope, pieces(6 * 1024 * 1024));
      assert.equal(streamed.sha256, sha(whole));
      assert.equal(streamed.size, whole.length);
      assert.deepEqual(await store.putContent(scope, whole), streamed);
      const again = await Promise.all([1, 2, 3, 4].map(() => store.putContent(scope, pieces(6 * 1024 * 1024, 10_000))));
      for (const ref of again) assert.deepEqual(ref, streamed);
      assert.deepEqual(await store.list(scope), [streamed.key]);
      assert.ok((await store.get(streamed.key)).equals(whole));
      assert.ok((await collect(await store.stream(streamed.key))).equals(whole));
    });

    it('stops past maxBytes with BlobTooLargeError and keeps nothing', async () => {
      const scope = freshScope();
      await assert.rejects(store.putContent(scope, pieces(300_000), { maxBytes: 200_000 }), (err: unknown) => {
        assert.ok(err instanceof BlobTooLargeError);
        assert.equal(err.maxBytes, 200_000);
        return true;
      });
      await assert.rejects(store.putContent(scope, Buffer.alloc(11), { maxBytes: 10 }), BlobTooLargeError);
      assert.deepEqual(await store.list(scope), []);
      const exact = await store.putContent(scope, pieces(200_000), { maxBytes: 200_000 });
      assert.equal(exact.size, 200_000);
    });

    it('a source that fails mid-way fails the put and keeps nothing', async () => {
      const scope = freshScope();
      async function* broken() {
        yield Buffer.alloc(100_000, 1);
        throw new Error('client went away');
      }
      await assert.rejects(store.putContent(scope, broken()), /client went away/);
      assert.deepEqual(await store.list(scope), []);
    });

    it('putAt replaces what was at the key; concurrent writers leave one whole value', async () => {
      const scope = freshScope();
      const key = `${scope}/results/0.json`;
      await store.putAt(key, 'first');
      const ref = await store.putAt(key, '{"second":true}');
      assert.deepEqual(ref, { key, sha256: sha('{"second":true}'), size: 15 });
      assert.equal((await store.get(key)).toString(), '{"second":true}');
      const values = ['a', 'b', 'c', 'd', 'e', 'f'].map((c) => c.repeat(256 * 1024));
      await Promise.all(values.map((v) => store.putAt(key, v)));
      assert.ok(values.includes((await store.get(key)).toString()), 'the blob is one of the values written, whole');
    });

    it('a missing key is BlobNotFoundError for get and stream, and null for size', async () => {
      const key = `${freshScope()}/nothing-here`;
      await assert.rejects(store.get(key), (err: unknown) => err instanceof BlobNotFoundError && err.key === key);
      await assert.rejects(store.stream(key), BlobNotFoundError);
      assert.equal(await store.size(key), null);
    });

    it('delete removes one blob and says whether there was one', async () => {
      const scope = freshScope();
      const ref = await store.putContent(scope, Buffer.from('document'));
      await store.putAt(`${ref.key}.json`, '{"type":"text"}');
      assert.equal(await store.delete(ref.key), true);
      assert.equal(await store.delete(ref.key), false);
      assert.equal(await store.size(ref.key), null);
      assert.deepEqual(await store.list(scope), [`${ref.key}.json`]);
    });

    it('lists and deletes a scope, nested keys included, and nothing of a scope with a longer name', async () => {
      const scope = freshScope();
      const sibling = `${scope}0`; // job-…-1 and job-…-10 share a prefix, not a scope
      await store.putAt(`${sibling}/text`, 'keep me');
      const keys = [`${scope}/chunks.json`, `${scope}/chunks/0`, `${scope}/chunks/1`, `${scope}/results/0.json`, `${scope}/text`];
      await Promise.all(keys.map((k) => store.putAt(k, k)));
      const content = await store.putContent(scope, Buffer.from('source'));
      assert.deepEqual(await store.list(scope), [...keys, content.key].sort());
      assert.equal(await store.deleteScope(scope), keys.length + 1);
      assert.deepEqual(await store.list(scope), []);
      assert.equal(await store.deleteScope(scope), 0);
      assert.deepEqual(await store.list(sibling), [`${sibling}/text`]);
    });

    it('refuses keys that could leave the store or collide with its temp files', async () => {
      for (const bad of ['../etc/passwd', 'a/../../b', '/abs/key', 'a//b', 'a/', '', 'a/./b', 'jobs/.tmp-1', 'a\\b', 'a b']) {
        await assert.rejects(store.putAt(bad, 'x'), InvalidBlobKeyError, `putAt ${JSON.stringify(bad)}`);
        await assert.rejects(store.get(bad), InvalidBlobKeyError, `get ${JSON.stringify(bad)}`);
        await assert.rejects(store.putContent(bad, Buffer.from('x')), InvalidBlobKeyError, `putContent ${JSON.stringify(bad)}`);
        await assert.rejects(store.deleteScope(bad), InvalidBlobKeyError, `deleteScope ${JSON.stringify(bad)}`);
      }
    });
  });
}

describe('S3 blob store, against moto', () => {
  const BUCKET = 'switchyard-test';
  let moto: Moto;
  before(async () => {
    moto = await startMoto();
    await moto.createBucket(BUCKET);
  });
  after(async () => moto?.stop());

  blobStoreContract(() => createBlobStore(moto.settings(BUCKET, 'switchyard/')));

  it('keeps every object under the configured prefix', async () => {
    const store = createBlobStore(moto.settings(BUCKET, 'team-a/blobs/'));
    const scope = freshScope();
    await store.putAt(`${scope}/text`, 'hello');
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: moto.endpoint,
      forcePathStyle: true,
      credentials: moto.settings(BUCKET).credentials,
    });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'team-a/' }));
    client.destroy();
    assert.deepEqual(
      listed.Contents?.map((o) => o.Key),
      [`team-a/blobs/${scope}/text`],
    );
    assert.deepEqual(await store.list(scope), [`${scope}/text`]);
  });
});

describe('file blob store', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-blobs-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Sealed with a key, as every configuration that has one (and `npm start`) stores them.
  const keyEntry = newKeyEntry('blob-test');
  const keys = parseEncryptionKeys(keyEntry).keys;

  blobStoreContract(() => createBlobStore({ kind: 'file', dir, keys }));

  it('a writer killed mid-blob leaves nothing under any key; another process reads what it finished', async () => {
    const scope = freshScope();
    // A separate process: one whole blob, then a content upload that stalls after its first megabyte.
    const script = `
      const { FileBlobStore } = require(${JSON.stringify(path.join(ROOT, 'src/blobs/file-store.ts'))});
      const { parseEncryptionKeys } = require(${JSON.stringify(path.join(ROOT, 'src/crypto/key-ring.ts'))});
      const store = new FileBlobStore(${JSON.stringify(dir)}, parseEncryptionKeys(${JSON.stringify(keyEntry)}).keys);
      (async () => {
        await store.putAt('${scope}/text', 'finished');
        await store.putContent('${scope}', (async function* () {
          yield Buffer.alloc(1024 * 1024, 7);
          process.stdout.write('writing\\n');
          await new Promise(() => setInterval(() => {}, 1000));
        })());
      })();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('writing') && resolve());
      child.once('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    child.kill('SIGKILL');
    await exited;

    const store = createBlobStore({ kind: 'file', dir, keys });
    assert.deepEqual(await store.list(scope), [`${scope}/text`]);
    assert.equal((await store.get(`${scope}/text`)).toString(), 'finished');
    const leftovers = fs.readdirSync(path.join(dir, scope)).filter((f) => f !== 'text');
    assert.equal(leftovers.length, 1, 'the killed write left its temp file');
    assert.ok(leftovers[0]!.startsWith('.'), leftovers[0]);
    assert.equal(await store.deleteScope(scope), 1);
    assert.equal(fs.existsSync(path.join(dir, scope)), false, 'deleteScope removes the temp file too');
  });
});

describe('file blob store without encryption keys', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-blobs-plain-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  blobStoreContract(() => createBlobStore({ kind: 'file', dir, keys: [] }));
});
