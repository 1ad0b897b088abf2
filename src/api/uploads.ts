/**
 * Request bodies streamed into the blob store as they arrive (documents, batch files), never held whole.
 * Routes reading them are mounted before the JSON body parser, which would read them first.
 */
import type { Request } from 'express';
import { SwitchyardError } from '../errors';

/** The client hung up before the whole upload had arrived. */
export class UploadInterruptedError extends SwitchyardError {
  override readonly name = 'UploadInterruptedError';
  readonly code = 'upload-interrupted';
  constructor(options: ErrorOptions) {
    super('The upload was cut off before its end; nothing was stored', options);
  }
}

/** The upload's size as its Content-Length announces it; 0 when it announces none (chunked). */
export const declaredSize = (req: Request): number => Number(req.get('content-length') ?? 0);

/**
 * Runs `read` on the request's body. When it throws, the rest of the body is read and dropped, so the
 * client gets the answer rather than a reset while it is still sending. The iterator is ended first:
 * while it listens for `readable`, the stream does not flow.
 */
export async function readingUpload<T>(req: Request, read: (body: AsyncIterator<Buffer>) => Promise<T>): Promise<T> {
  const body = req.iterator({ destroyOnReturn: false });
  try {
    return await read(body);
  } catch (err) {
    await body.return?.();
    req.resume();
    throw err;
  }
}

/** Reads chunks until at least `bytes` have arrived or the body ends; what was read, as one buffer. */
export async function readHead(body: AsyncIterator<Buffer>, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < bytes) {
    const next = await nextChunk(body);
    if (next.done) break;
    chunks.push(next.value);
    length += next.value.length;
  }
  return Buffer.concat(chunks);
}

/** The chunks still to come. */
export async function* chunksOf(body: AsyncIterator<Buffer>): AsyncIterable<Uint8Array> {
  for (let next = await nextChunk(body); !next.done; next = await nextChunk(body)) yield next.value;
}

export async function* withHead(head: Buffer, rest: AsyncIterator<Buffer>): AsyncIterable<Uint8Array> {
  yield head;
  yield* chunksOf(rest);
}

/** The upload's next chunk; a connection reset while it arrives is the client hanging up (UploadInterruptedError). */
async function nextChunk(body: AsyncIterator<Buffer>): Promise<IteratorResult<Buffer>> {
  return body.next().catch((err: unknown) => {
    throw (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? new UploadInterruptedError({ cause: err }) : err;
  });
}
