import { ApplicationFailure, Context } from '@temporalio/activity';
import { BlobNotFoundError, type BlobRef, type BlobStore } from '../src/blobs/store';
import type { Config } from '../src/config';
import { DocumentRollUp, embeddingLine, summaryOf, type ChunkResult } from '../src/documents/aggregate';
import {
  chunkKey,
  chunkResultKey,
  chunksScope,
  embeddingsKey,
  manifestKey,
  resultKey,
  resultsScope,
  sourceScope,
  summariesKey,
  summaryKey,
  textKey,
} from '../src/documents/job-keys';
import { chunkText } from '../src/documents/chunk';
import { detectDocumentType, SNIFF_BYTES, UnsupportedDocumentError } from '../src/documents/detect';
import { extractText } from '../src/documents/extract';
import { safeHeartbeat } from '../src/inference/provider';
import { DOCUMENT_FAILURES, type DocumentTask, type DocumentType } from '../src/documents/contract';
import { fetchOutbound, OutboundTooLargeError, UrlRefusedError } from '../src/net/outbound';
import { deliverWebhook, WebhookFailedError } from '../src/net/webhook';

export interface PipelineActivityDeps {
  blobs: BlobStore;
  /** Where document URLs and webhooks may go, and how long and large a response may be. */
  outbound: Config['outbound'];
  /** The secret that signs a tenant's webhooks; undefined when none is configured. */
  webhookSecretOf: (tenant: string) => string | undefined;
}

/** Failed chunks listed by index in the result; more are only counted. */
const FAILED_INDEXES_LISTED = 1000;
/** Chunk results read ahead of the one being rolled up, and chunks written at once: a remote store answers many small requests in parallel. */
const READ_AHEAD = 16;
const PARALLEL_WRITES = 16;
/** Steps that cannot heartbeat themselves (PDF extraction) are heartbeated this often. */
const HEARTBEAT_EVERY_MS = 5000;

/**
 * The document pipeline's steps that need no model: run by the workflow worker on the workflows task
 * queue, next to the workflow that calls them. Each reads and writes the blob store and hands the
 * workflow references; the long ones heartbeat.
 */
export function createPipelineActivities({ blobs, outbound, webhookSecretOf }: PipelineActivityDeps) {
  /** The chunk results in index order, a few read ahead; null for a chunk that has none (it failed). */
  async function* chunkResults(scope: string, chunks: number, skip: ReadonlySet<number>): AsyncGenerator<ChunkResult | null> {
    const read = (index: number): Promise<ChunkResult | null> => {
      if (skip.has(index)) return Promise.resolve(null);
      const reading = blobs.get(chunkResultKey(scope, index)).then(
        (bytes) => JSON.parse(bytes.toString('utf8')) as ChunkResult,
        (err: unknown) => {
          if (err instanceof BlobNotFoundError) return null;
          throw err;
        },
      );
      reading.catch(() => undefined); // awaited in turn below; a generator closed early must not leave it unhandled
      return reading;
    };
    const ahead: Array<Promise<ChunkResult | null>> = [];
    for (let index = 0; index < Math.min(READ_AHEAD, chunks); index++) ahead.push(read(index));
    for (let index = 0; index < chunks; index++) {
      const result = await ahead.shift()!;
      if (index + READ_AHEAD < chunks) ahead.push(read(index + READ_AHEAD));
      Context.current().heartbeat();
      yield result;
    }
  }

  return {
    /** Fetches a document URL through the SSRF guard into the job scope, and says what type it is. */
    async fetchDocument({ url, scope }: { url: string; scope: string }): Promise<{ blob: BlobRef; type: DocumentType }> {
      const ctx = Context.current();
      let res: Awaited<ReturnType<typeof fetchOutbound>>;
      try {
        res = await fetchOutbound(
          url,
          { headers: { accept: 'application/pdf, text/html, text/markdown, text/plain;q=0.9, */*;q=0.1' } },
          outbound,
          ctx.cancellationSignal,
        );
      } catch (err) {
        if (err instanceof UrlRefusedError) throw fatal(DOCUMENT_FAILURES.urlRefused, `${url} was refused: ${err.reason}`);
        if (err instanceof OutboundTooLargeError) throw fatal(DOCUMENT_FAILURES.documentTooLarge, `${url}: ${err.message}`);
        if (ctx.cancellationSignal.aborted) throw err;
        throw ApplicationFailure.retryable(`${url} could not be fetched: ${(err as Error).message}`, DOCUMENT_FAILURES.fetchFailed);
      }
      if (res.status < 200 || res.status >= 300) {
        // A 4xx other than 408 and 429 will be the same answer next time.
        const final = res.status >= 300 && res.status < 500 && res.status !== 408 && res.status !== 429;
        const message = `${url} answered HTTP ${res.status}`;
        throw final ? fatal(DOCUMENT_FAILURES.fetchFailed, message) : ApplicationFailure.retryable(message, DOCUMENT_FAILURES.fetchFailed);
      }
      if (res.body.length === 0) throw fatal(DOCUMENT_FAILURES.emptyDocument, `${url} answered with no content`);
      const type = typeOf(res.body, {
        contentType: header(res.headers['content-type']),
        filename: new URL(res.finalUrl).pathname.split('/').at(-1),
      });
      return { blob: await blobs.putContent(sourceScope(scope), res.body), type };
    },

    /** The document's plain text, stored in the job scope; a document without text fails EmptyDocument. */
    async extractText({
      source,
      type,
      scope,
    }: {
      source: BlobRef;
      type: DocumentType;
      scope: string;
    }): Promise<{ text: BlobRef; chars: number }> {
      const bytes = await blobs.get(source.key);
      const text = await heartbeating(
        extractText(bytes, type).catch((err: unknown) => {
          throw err instanceof UnsupportedDocumentError ? fatal(DOCUMENT_FAILURES.unsupportedDocument, err.message) : err;
        }),
      );
      if (!text.trim()) throw fatal(DOCUMENT_FAILURES.emptyDocument, `the ${type} document has no text`);
      return { text: await blobs.putAt(textKey(scope), text), chars: text.length };
    },

    /** Splits the text into chunks at sentence ends, each stored at its index, with a manifest of them all. */
    async splitText({
      text,
      chunkChars,
      scope,
    }: {
      text: BlobRef;
      chunkChars: number;
      scope: string;
    }): Promise<{ chunks: number; manifest: BlobRef }> {
      const chunks = chunkText((await blobs.get(text.key)).toString('utf8'), chunkChars);
      if (chunks.length === 0) throw fatal(DOCUMENT_FAILURES.emptyDocument, 'the document has no text to analyse');
      const manifest = new Array<{ index: number; sha256: string; chars: number }>(chunks.length);
      let next = 0;
      const writer = async () => {
        for (let i = next++; i < chunks.length; i = next++) {
          const { sha256 } = await blobs.putAt(chunkKey(scope, i), chunks[i]!.text);
          manifest[i] = { index: i, sha256, chars: chunks[i]!.text.length };
          Context.current().heartbeat();
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL_WRITES, chunks.length) }, writer));
      return { chunks: chunks.length, manifest: await blobs.putAt(manifestKey(scope), JSON.stringify(manifest)) };
    },

    /** The chunk summaries one after another, for the document summary; null when no chunk has one. */
    async collectSummaries({
      scope,
      chunks,
      failedChunks,
    }: {
      scope: string;
      chunks: number;
      failedChunks: number[];
    }): Promise<BlobRef | null> {
      const summaries: string[] = [];
      for await (const result of chunkResults(scope, chunks, new Set(failedChunks))) {
        const summary = result && summaryOf(result);
        if (summary) summaries.push(summary);
      }
      return summaries.length ? blobs.putAt(summariesKey(scope), summaries.join('\n\n')) : null;
    },

    /**
     * Rolls the chunk results up into the job's result (`result.json`) and writes the embeddings, one
     * line per chunk. Chunks without a result are the failed ones.
     */
    async aggregateDocument(request: {
      scope: string;
      chunks: number;
      tasks: DocumentTask[];
      prompt?: string;
      failedChunks: number[];
      /** The document summary, when the job summarises. */
      summary?: BlobRef;
    }): Promise<{ result: BlobRef; chunksAnalysed: number; chunksFailed: number }> {
      const { scope, chunks, tasks } = request;
      const rollUp = new DocumentRollUp(tasks);
      const failedIndexes: number[] = [];
      let chunksFailed = 0;
      const embeddings: Buffer[] = [];
      let index = 0;
      for await (const result of chunkResults(scope, chunks, new Set(request.failedChunks))) {
        if (result) {
          rollUp.add(result);
          const line = embeddingLine(result);
          if (line) embeddings.push(Buffer.from(line));
        } else {
          chunksFailed++;
          if (failedIndexes.length < FAILED_INDEXES_LISTED) failedIndexes.push(index);
        }
        index++;
      }
      const embedded = tasks.includes('embed');
      if (embedded) await blobs.putAt(embeddingsKey(scope), Buffer.concat(embeddings));
      const documentSummary = request.summary
        ? ((JSON.parse((await blobs.get(request.summary.key)).toString('utf8')) as { summary: string | null }).summary ?? null)
        : null;
      const document = rollUp.finish({
        total: chunks,
        failedIndexes,
        documentSummary,
        embeddingsKey: embedded ? embeddingsKey(scope) : undefined,
        prompt: request.prompt,
      });
      const result = await blobs.putAt(resultKey(scope), JSON.stringify(document));
      return { result, chunksAnalysed: chunks - chunksFailed, chunksFailed };
    },

    /** Deletes what only the pipeline needed (text, chunks, chunk results, a fetched source); the result and the embeddings stay. */
    async deleteTemporaryData({ scope }: { scope: string }): Promise<number> {
      let deleted = 0;
      for (const key of [textKey(scope), manifestKey(scope), summariesKey(scope), summaryKey(scope)]) {
        if (await blobs.delete(key)) deleted++;
      }
      for (const temporary of [chunksScope(scope), resultsScope(scope), sourceScope(scope)]) {
        Context.current().heartbeat();
        deleted += await blobs.deleteScope(temporary);
      }
      return deleted;
    },

    /** Deletes everything the job stored: after a cancellation or a failure. */
    async deleteJobData({ scope }: { scope: string }): Promise<number> {
      return blobs.deleteScope(scope);
    },

    /**
     * One attempt to POST the signed event to the job's webhook (`id` is the same on every attempt).
     * A failure carries `{ status, attempt }` so the workflow can report the last one.
     */
    async deliverWebhook({
      url,
      tenant,
      id,
      event,
    }: {
      url: string;
      tenant: string;
      id: string;
      event: unknown;
    }): Promise<{ status: number; attempts: number }> {
      const ctx = Context.current();
      const attempt = ctx.info.attempt;
      const failed = (message: string, status: number, opts: { type?: string; final?: boolean; retryAfterMs?: number } = {}) =>
        ApplicationFailure.create({
          type: opts.type ?? DOCUMENT_FAILURES.webhookFailed,
          message,
          nonRetryable: opts.final ?? false,
          nextRetryDelay: opts.retryAfterMs,
          details: [{ status, attempt }],
        });
      const secret = webhookSecretOf(tenant);
      if (!secret) throw failed(`no webhook secret is configured for tenant ${tenant}`, 0, { final: true });
      try {
        const { status } = await deliverWebhook({ url, id, event, secret, policy: outbound, signal: ctx.cancellationSignal });
        return { status, attempts: attempt };
      } catch (err) {
        if (err instanceof UrlRefusedError)
          throw failed(`${url} was refused: ${err.reason}`, 0, { type: DOCUMENT_FAILURES.urlRefused, final: true });
        if (err instanceof WebhookFailedError)
          throw failed(err.message, err.status, { final: !err.retryable, retryAfterMs: err.retryAfterMs });
        if (ctx.cancellationSignal.aborted) throw err;
        throw failed(`the webhook could not be delivered: ${(err as Error).message}`, 0);
      }
    },
  };
}

export type PipelineActivities = ReturnType<typeof createPipelineActivities>;

/** A failure no retry can change, typed for the job's lastFailure. */
const fatal = (type: (typeof DOCUMENT_FAILURES)[keyof typeof DOCUMENT_FAILURES], message: string) =>
  ApplicationFailure.nonRetryable(message, type);

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

function typeOf(body: Buffer, declared: { contentType?: string; filename?: string }): DocumentType {
  try {
    return detectDocumentType(body.subarray(0, SNIFF_BYTES), declared);
  } catch (err) {
    throw err instanceof UnsupportedDocumentError ? fatal(DOCUMENT_FAILURES.unsupportedDocument, err.message) : err;
  }
}

/** Awaits `work`, heartbeating meanwhile: for steps that cannot heartbeat themselves. */
async function heartbeating<T>(work: Promise<T>): Promise<T> {
  const ctx = Context.current();
  const call = { signal: ctx.cancellationSignal, heartbeat: () => ctx.heartbeat() };
  const beat = setInterval(() => safeHeartbeat(call), HEARTBEAT_EVERY_MS);
  try {
    return await work;
  } finally {
    clearInterval(beat);
  }
}
