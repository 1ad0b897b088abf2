/**
 * The payload codec every client and worker uses (src/temporal/codec.ts): payloads sealed with the first
 * key and opened with whichever one sealed them, a fresh nonce each time, altered bytes and unknown keys
 * refused with errors that say so, old keys still read after a new one is put in front, compression
 * before encryption, failure messages moved into an encrypted payload; and the key list's own errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure, defaultPayloadConverter, str, type Payload } from '@temporalio/common';
import { decode, decodeFailure, encode, encodeFailure } from '@temporalio/common/lib/internal-non-workflow';
import { ConfigError, loadConfig } from '../../src/config';
import { DecryptionFailedError, newKeyEntry, parseEncryptionKeys, UnknownEncryptionKeyError } from '../../src/crypto/key-ring';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA, payloadCodecsOf, type PayloadSettings } from '../../src/temporal/codec';
import { failureConverter } from '../../src/temporal/failure-converter';
import { rootFailure } from '../../src/temporal/proto';

const PROMPT = 'Summarise the quarterly numbers for Project Nightingale before Friday.';
const OLD = newKeyEntry('old');
const NEW = newKeyEntry('new');

const settings = (keys: string, compression: PayloadSettings['compression'] = { algorithm: 'none', minBytes: 0 }): PayloadSettings => ({
  keys: parseEncryptionKeys(keys).keys,
  compression,
});
const codecs = (...args: Parameters<typeof settings>) => payloadCodecsOf(settings(...args));
const payloadOf = (value: unknown) => defaultPayloadConverter.toPayload(value);
const valueOf = (payload: Payload | undefined) => defaultPayloadConverter.fromPayload(payload!);
const metadata = (p: Payload, key: string) => (p.metadata?.[key] ? str(p.metadata[key]) : undefined);
const holds = (bytes: Uint8Array | null | undefined, text: string) => Buffer.from(bytes ?? []).includes(text);

describe('the encryption codec', () => {
  it('seals the whole payload, names its key, and opens it again', async () => {
    const [sealed] = await encode(codecs(OLD), [payloadOf({ text: PROMPT })]);
    assert.equal(metadata(sealed!, 'encoding'), ENCRYPTED_ENCODING);
    assert.equal(metadata(sealed!, KEY_ID_METADATA), 'old');
    assert.deepEqual(Object.keys(sealed!.metadata!).sort(), ['encoding', KEY_ID_METADATA].sort(), 'the original encoding is sealed too');
    assert.ok(!holds(sealed!.data, 'Nightingale'), 'no plaintext in the sealed bytes');
    assert.deepEqual(valueOf((await decode(codecs(OLD), [sealed!]))[0]), { text: PROMPT });
  });

  it('uses a fresh nonce for every payload: the same value never seals to the same bytes', async () => {
    const [a, b] = await encode(codecs(OLD), [payloadOf(PROMPT), payloadOf(PROMPT)]);
    assert.notDeepEqual(Buffer.from(a!.data!), Buffer.from(b!.data!));
    assert.notDeepEqual(Buffer.from(a!.data!).subarray(0, 12), Buffer.from(b!.data!).subarray(0, 12));
  });

  it('refuses a payload whose bytes were altered, with an error that says so', async () => {
    const [sealed] = await encode(codecs(OLD), [payloadOf(PROMPT)]);
    const data = Buffer.from(sealed!.data!);
    data.writeUInt8(data.readUInt8(data.length - 20) ^ 0x01, data.length - 20);
    await assert.rejects(decode(codecs(OLD), [{ ...sealed!, data }]), (err: unknown) => {
      assert.ok(err instanceof DecryptionFailedError, String(err));
      assert.match(err.message, /key "old" failed authentication: it was altered/);
      return true;
    });
  });

  it('refuses a key id swapped in the metadata', async () => {
    const ring = `${OLD},${NEW}`;
    const [sealed] = await encode(codecs(ring), [payloadOf(PROMPT)]);
    const swapped = { ...sealed!, metadata: { ...sealed!.metadata, [KEY_ID_METADATA]: Buffer.from('new') } };
    await assert.rejects(decode(codecs(ring), [swapped]), DecryptionFailedError);
  });

  it('names a key it does not hold, and the keys it does', async () => {
    const [sealed] = await encode(codecs(OLD), [payloadOf(PROMPT)]);
    await assert.rejects(decode(codecs(NEW), [sealed!]), (err: unknown) => {
      assert.ok(err instanceof UnknownEncryptionKeyError, String(err));
      assert.match(err.message, /key "old", which SWITCHYARD_ENCRYPTION_KEYS does not hold \(it holds "new"\)/);
      return true;
    });
    await assert.rejects(decode(codecs(''), [sealed!]), /\(it is empty\)/);
  });

  it('rotation: a new key in front encrypts, and what the old key sealed still reads', async () => {
    const [before] = await encode(codecs(OLD), [payloadOf({ text: PROMPT })]);
    const rotated = codecs(`${NEW},${OLD}`);
    const [after] = await encode(rotated, [payloadOf({ text: PROMPT })]);
    assert.equal(metadata(after!, KEY_ID_METADATA), 'new');
    assert.deepEqual((await decode(rotated, [before!, after!])).map(valueOf), [{ text: PROMPT }, { text: PROMPT }]);
    // Once the old key is dropped, its payloads no longer read: it stays until nothing sealed under it is read.
    await assert.rejects(decode(codecs(NEW), [before!]), UnknownEncryptionKeyError);
  });

  it('without keys encodes nothing, and payloads stored in the clear read as they are', async () => {
    const plain = payloadOf({ text: PROMPT });
    assert.deepEqual(await encode(codecs(''), [plain]), [plain]);
    assert.deepEqual(valueOf((await decode(codecs(OLD), [plain]))[0]), { text: PROMPT });
  });
});

describe('compression before encryption', () => {
  const long = `${PROMPT} `.repeat(200);

  for (const algorithm of ['gzip', 'deflate'] as const) {
    it(`${algorithm}: a payload at or above the threshold is compressed, then sealed, and reads back`, async () => {
      const compressing = codecs(OLD, { algorithm, minBytes: 1024 });
      const [compressed] = await encode(compressing.slice(0, 1), [payloadOf(long)]);
      assert.equal(metadata(compressed!, 'encoding'), `binary/${algorithm}`);
      const [sealed] = await encode(compressing, [payloadOf(long)]);
      assert.equal(metadata(sealed!, 'encoding'), ENCRYPTED_ENCODING);
      assert.ok(sealed!.data!.length < long.length / 4, `${sealed!.data!.length} bytes for ${long.length} characters`);
      assert.equal(valueOf((await decode(compressing, [sealed!]))[0]), long);
      // Read back whatever the settings are now: the payload's metadata says how it was encoded.
      assert.equal(valueOf((await decode(codecs(OLD), [sealed!]))[0]), long);
    });
  }

  it('leaves a payload below the threshold uncompressed', async () => {
    const [kept] = await encode(codecs('', { algorithm: 'gzip', minBytes: 1024 }), [payloadOf(PROMPT)]);
    assert.equal(metadata(kept!, 'encoding'), 'json/plain');
  });
});

describe('failure messages', () => {
  it('are moved into an encrypted payload, with the failure type left readable, and read back', async () => {
    const failure = failureConverter.errorToFailure(
      ApplicationFailure.nonRetryable(`the model refused: ${PROMPT}`, 'ProviderRejected'),
      defaultPayloadConverter,
    );
    const stored = await encodeFailure(codecs(OLD), failure);
    assert.equal(stored.message, 'Encoded failure');
    assert.equal(stored.stackTrace, '');
    assert.equal(stored.applicationFailureInfo?.type, 'ProviderRejected');
    assert.equal(metadata(stored.encodedAttributes!, 'encoding'), ENCRYPTED_ENCODING);
    assert.ok(!holds(stored.encodedAttributes!.data, 'Nightingale'));
    assert.deepEqual(rootFailure(await decodeFailure(codecs(OLD), stored)), {
      type: 'ProviderRejected',
      message: `the model refused: ${PROMPT}`,
    });
  });
});

describe('SWITCHYARD_ENCRYPTION_KEYS', () => {
  const problemsOf = (value: string) => {
    try {
      loadConfig({ SWITCHYARD_ENCRYPTION_KEYS: value });
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems;
    }
    return [];
  };

  it('takes id:base64 entries of 32-byte keys, the first one first', () => {
    const config = loadConfig({ SWITCHYARD_ENCRYPTION_KEYS: ` ${NEW} , ${OLD} ` });
    assert.deepEqual(
      config.temporal.payloads.keys.map((k) => [k.id, k.key.length]),
      [
        ['new', 32],
        ['old', 32],
      ],
    );
    assert.equal(config.blobs.kind === 'file' && config.blobs.keys, config.temporal.payloads.keys, 'blobs use the same keys');
  });

  it('says which entry is wrong and how, without echoing key material', () => {
    const short = Buffer.alloc(16, 7).toString('base64');
    const problems = problemsOf(`k1:${short},no-colon,k3:not base64!,${OLD},${OLD}`);
    assert.deepEqual(problems, [
      'SWITCHYARD_ENCRYPTION_KEYS: entry 1 ("k1"): the key is 16 bytes; AES-256 needs 32',
      'SWITCHYARD_ENCRYPTION_KEYS: entry 2: entries are id:base64, the id of letters, digits . _ - (at most 64)',
      'SWITCHYARD_ENCRYPTION_KEYS: entry 3 ("k3"): the key is not base64 (make one with: openssl rand -base64 32)',
      'SWITCHYARD_ENCRYPTION_KEYS: entry 5 ("old"): the id is listed twice',
    ]);
    assert.ok(!problems.join('\n').includes(short));
  });
});
