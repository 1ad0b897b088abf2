/**
 * A batch's output and errors files, as JSON lines made from the groups' result parts: read part by part,
 * in input order, never the whole output at once. In the OpenAI format each line takes the shape of
 * OpenAI's batch output, so OpenAI's clients read the file as they read OpenAI's own.
 */
import { createHash } from 'node:crypto';
import type { BlobStore } from '../blobs/store';
import type { InferenceResult, TokenUsage } from '../inference/provider';
import type { BatchFormat, BatchItemResult } from './contract';
import { linesOf } from './jsonl';
import { readGroupProgress } from './progress';

type ItemFailure = Extract<BatchItemResult, { ok: false }>;
type ItemSuccess = Extract<BatchItemResult, { ok: true }>;

/**
 * The lines (each ending in `\n`) of the batch's `output` (items that succeeded) or `errors` (items that
 * failed) file, for the results its groups have so far; a group without a manifest has none yet.
 * `createdAt` (epoch ms, the batch's acceptance) is the `created` of OpenAI bodies, so a file reads the same every time.
 */
export async function* batchResultLines(
  blobs: BlobStore,
  scope: string,
  groups: number,
  which: 'output' | 'errors',
  format: BatchFormat,
  batchId: string,
  createdAt = 0,
): AsyncIterable<string> {
  const lineOf = format === 'openai' ? openaiLine(batchId, Math.floor(createdAt / 1000)) : switchyardLine;
  for (let group = 0; group < groups; group++) {
    const progress = await readGroupProgress(blobs, scope, group);
    for (const part of progress?.parts ?? []) {
      for await (const text of linesOf(await blobs.stream(part))) {
        if (text === '') continue;
        const result = JSON.parse(text) as BatchItemResult;
        if (result.ok === (which === 'output')) yield `${JSON.stringify(lineOf(result))}\n`;
      }
    }
  }
}

function switchyardLine(r: BatchItemResult) {
  return r.ok
    ? { custom_id: r.customId, result: { model: r.result.model, output: r.result.output, usage: r.result.usage }, attempts: r.attempts }
    : { custom_id: r.customId, error: r.error, attempts: r.attempts };
}

/** OpenAI's batch output line: a response (the model's answer or its HTTP error) or, for an item that got none, an error. */
function openaiLine(batchId: string, created: number) {
  return (r: BatchItemResult) => {
    // Ids derived from the batch and the custom_id: the same in every download of the file.
    const digest = createHash('sha256')
      .update(JSON.stringify([batchId, r.customId]))
      .digest('hex');
    const ids = { id: `batch_req_${digest.slice(0, 32)}`, custom_id: r.customId };
    const requestId = `req_${digest.slice(32)}`;
    if (r.ok) {
      return { ...ids, response: { status_code: 200, request_id: requestId, body: openaiBody(r, digest, created) }, error: null };
    }
    const { status } = r.error;
    if (status !== undefined && status >= 400) {
      const body = { error: { message: r.error.message, type: r.error.type, param: null, code: null } };
      return { ...ids, response: { status_code: status, request_id: requestId, body }, error: null };
    }
    return { ...ids, response: null, error: { code: openaiErrorCode(r.error), message: r.error.message } };
  };
}

/** The body the endpoint the line asked for answers with: OpenAI lines run as `chat` or `embed` (src/batches/lines.ts). */
function openaiBody({ result }: ItemSuccess, digest: string, created: number) {
  const usage = tokensOf(result);
  if (result.task === 'embed') {
    const { embedding } = result.output as { embedding: number[] };
    return {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding }],
      model: result.model,
      usage: { prompt_tokens: usage.promptTokens, total_tokens: usage.totalTokens },
    };
  }
  const output = result.output as { message?: { content?: string }; finishReason?: string | null };
  return {
    id: `chatcmpl-${digest.slice(0, 29)}`,
    object: 'chat.completion',
    created,
    model: result.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: output.message?.content ?? '' },
        logprobs: null,
        finish_reason: output.finishReason ?? 'stop',
      },
    ],
    usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.totalTokens },
  };
}

/** OpenAI's bodies always carry usage: zeros where the provider reported none. */
const tokensOf = (result: InferenceResult): TokenUsage => result.usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 };

/** The failure type in snake case: BatchExpired and BatchCancelled become OpenAI's batch_expired and batch_cancelled. */
const openaiErrorCode = (error: ItemFailure['error']) => error.type.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
