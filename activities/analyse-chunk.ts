import { ApplicationFailure, Context } from '@temporalio/activity';
import type { BlobRef, BlobStore } from '../src/blobs/store';
import { addUsage, type ChunkResult } from '../src/documents/aggregate';
import { chunkKey, chunkResultKey, summaryKey } from '../src/documents/job-keys';
import type { TokenUsage, InferenceRequest } from '../src/inference/provider';
import { INFERENCE_TASK_OF, type DocumentTask } from '../src/documents/contract';
import type { Infer } from './inference-call';

export interface AnalyseChunkRequest {
  scope: string;
  index: number;
  tasks: DocumentTask[];
  /** The instruction for the `prompt` task. */
  prompt?: string;
  /** The generating model (chat, summarize); embeddings keep the pool's embedding model. */
  model?: string;
}

/**
 * The document activities a pool runs: each reads its text from the blob store, makes its inference
 * calls the way `runInference` does (limiter, batching, metrics, heartbeats, typed failures), and
 * writes what came out back to the blob store. The workflow sees only small answers.
 */
export function createChunkActivities({ blobs, infer }: { blobs: BlobStore; infer: Infer }) {
  return {
    /** Runs every task of the job on one chunk and stores the chunk's result. */
    async analyseChunk({ scope, index, tasks, prompt, model }: AnalyseChunkRequest): Promise<{ index: number; usage: TokenUsage | null }> {
      const ctx = Context.current();
      const key = chunkResultKey(scope, index);
      // A retry after the result was stored (the worker died before reporting) does not call the provider again.
      if ((await blobs.size(key)) !== null) {
        const stored = JSON.parse((await blobs.get(key)).toString('utf8')) as ChunkResult;
        return { index, usage: stored.usage };
      }
      const text = (await blobs.get(chunkKey(scope, index))).toString('utf8');
      const result: ChunkResult = { index, outputs: {}, usage: null };
      for (const task of tasks) {
        ctx.heartbeat();
        const { model: used, output, usage } = await infer(requestFor(task, text, prompt, model));
        result.outputs[task] = { model: used, output };
        result.usage = addUsage(result.usage, usage);
      }
      // A cancelled job deletes its blobs once its chunk activities have reported the cancellation: write nothing after it.
      ctx.cancellationSignal.throwIfAborted();
      await blobs.putAt(key, JSON.stringify(result));
      return { index, usage: result.usage };
    },

    /** Summarises the text at `source` (the chunk summaries one after another) into the document summary. */
    async summarizeText({ scope, source, model }: { scope: string; source: BlobRef; model?: string }): Promise<{ summary: BlobRef }> {
      const text = (await blobs.get(source.key)).toString('utf8');
      const result = await infer({ task: 'summarize', text, model });
      const summary = (result.output as { summary?: unknown } | null)?.summary;
      const stored = { summary: typeof summary === 'string' ? summary : null, model: result.model, usage: result.usage ?? null };
      return { summary: await blobs.putAt(summaryKey(scope), JSON.stringify(stored)) };
    },
  };
}

function requestFor(task: DocumentTask, text: string, prompt: string | undefined, model: string | undefined): InferenceRequest {
  if (task === 'prompt') {
    if (!prompt) throw ApplicationFailure.nonRetryable('the prompt task needs a prompt', 'InvalidInput');
    return {
      task: 'chat',
      messages: [
        { role: 'system', content: prompt },
        { role: 'user', content: text },
      ],
      model,
    };
  }
  const inferenceTask = INFERENCE_TASK_OF[task];
  return inferenceTask === 'summarize' ? { task: inferenceTask, text, model } : { task: inferenceTask, text };
}
