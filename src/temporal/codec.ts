/**
 * What every Temporal client and worker of Switchyard passes payloads through, built from config in this
 * one place: compression (when asked, for payloads large enough), then encryption with the key ring —
 * the whole payload, its metadata included, sealed with AES-256-GCM under the first key, the key's id in
 * the new payload's metadata. Decoding undoes whatever a payload's metadata says was done to it, so
 * payloads written before encryption or compression was turned on read as before. Codecs run outside
 * the workflow sandbox; failure messages and stack traces go into a payload too (./failure-converter.ts),
 * so they are encrypted like the rest.
 */
import { deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { METADATA_ENCODING_KEY, str, u8, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Config } from '../config';
import { KeyRing, open, seal } from '../crypto/key-ring';

export type PayloadSettings = Config['temporal']['payloads'];

export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** The metadata entry that names the key an encrypted payload was sealed with. */
export const KEY_ID_METADATA = 'encryption-key-id';

const ProtoPayload = temporal.api.common.v1.Payload;
const COMPRESSORS = {
  'binary/gzip': { compress: gzipSync, decompress: gunzipSync },
  'binary/deflate': { compress: deflateSync, decompress: inflateSync },
};

const encodingOf = (p: Payload): string | undefined => {
  const encoding = p.metadata?.[METADATA_ENCODING_KEY];
  return encoding ? str(encoding) : undefined;
};
const bytesOf = (p: Payload): Uint8Array => ProtoPayload.encode(p).finish();
/** Binds a sealed payload to the id it names and keeps it apart from anything else sealed with the key. */
const aadOf = (keyId: string) => u8(`switchyard payload ${keyId}`);

/** A codec from what it does to one payload each way (the interface is asynchronous; these are not). */
const codecOf = (encodeOne: (p: Payload) => Payload, decodeOne: (p: Payload) => Payload): PayloadCodec => ({
  encode: (payloads) => new Promise((resolve) => resolve(payloads.map(encodeOne))),
  decode: (payloads) => new Promise((resolve) => resolve(payloads.map(decodeOne))),
});

function encryptionCodec(ring: KeyRing): PayloadCodec {
  const key = ring.current;
  return codecOf(
    (p) =>
      key
        ? {
            metadata: { [METADATA_ENCODING_KEY]: u8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: u8(key.id) },
            data: seal(key, bytesOf(p), aadOf(key.id)),
          }
        : p,
    (p) => {
      if (encodingOf(p) !== ENCRYPTED_ENCODING) return p;
      const keyId = str(p.metadata?.[KEY_ID_METADATA] ?? new Uint8Array());
      return ProtoPayload.decode(open(ring.get(keyId), p.data ?? new Uint8Array(), aadOf(keyId)));
    },
  );
}

function compressionCodec({ algorithm, minBytes }: PayloadSettings['compression']): PayloadCodec {
  const encoding = algorithm === 'none' ? undefined : (`binary/${algorithm}` as const);
  return codecOf(
    (p) => {
      if (!encoding) return p;
      const bytes = bytesOf(p);
      if (bytes.length < minBytes) return p;
      const data = COMPRESSORS[encoding].compress(bytes);
      return data.length < bytes.length ? { metadata: { [METADATA_ENCODING_KEY]: u8(encoding) }, data } : p;
    },
    (p) => {
      const compressor = Object.entries(COMPRESSORS).find(([name]) => name === encodingOf(p))?.[1];
      return compressor ? ProtoPayload.decode(compressor.decompress(p.data ?? new Uint8Array())) : p;
    },
  );
}

/** The codecs in the order they encode: compression first, so what is compressed is plaintext. */
export function payloadCodecsOf(settings: PayloadSettings): PayloadCodec[] {
  return [compressionCodec(settings.compression), encryptionCodec(new KeyRing(settings.keys))];
}

/** The data converter of every client and worker; workflow bundles take the same failure converter (src/worker/workflow-bundle.ts). */
export function dataConverterOf(settings: PayloadSettings): DataConverter {
  return { payloadCodecs: payloadCodecsOf(settings), failureConverterPath: FAILURE_CONVERTER_PATH };
}

export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');
