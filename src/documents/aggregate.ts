/**
 * A document's result from its chunks' results, one chunk at a time: counts, running figures and the
 * small texts the result lists per chunk (summaries, prompt answers) are kept, never the chunk results
 * themselves, so ten thousand chunks roll up in little memory. Pure code; the aggregation activity does
 * the reading and writing.
 */
import type { DocumentTask } from './contract';
import type { TokenUsage } from '../inference/provider';

/** What the chunk activity stores for one chunk: each task's output as the provider gave it. */
export interface ChunkResult {
  index: number;
  outputs: Partial<Record<DocumentTask, { model: string; output: unknown }>>;
  /** Tokens all the chunk's calls used, where the provider reports them. */
  usage: TokenUsage | null;
}

/** Entities and keywords listed in the result: the most frequent; the rest are counted. */
export const TOP_ENTITIES = 200;
export const TOP_KEYWORDS = 100;

export interface DocumentResult {
  chunks: { total: number; analysed: number; failed: number; failedIndexes: number[] };
  tasks: DocumentTask[];
  models: string[];
  usage: TokenUsage | null;
  /** `document`: the summary of the chunk summaries; `chunks`: the chunk summaries in order. */
  summary?: { document: string | null; chunks: string };
  entities?: { distinct: number; top: Array<{ value: string; type: string; count: number }> };
  keywords?: { distinct: number; top: Array<{ term: string; count: number }> };
  /** Chunk sentiment scores (-1…1): their mean, and the most negative and most positive chunk. */
  sentiment?: { chunks: number; mean: number; min: { index: number; score: number }; max: { index: number; score: number } } | null;
  /** The vectors are in the embeddings blob, one `{ index, vector }` line per chunk. */
  embeddings?: { key: string; count: number; dimensions: number };
  prompt?: { prompt: string; outputs: Array<{ index: number; content: string }> };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const outputOf = (result: ChunkResult, task: DocumentTask): Record<string, unknown> | undefined => {
  const output = result.outputs[task]?.output;
  return isRecord(output) ? output : undefined;
};

/** A chunk's summary text, if it has one. */
export function summaryOf(result: ChunkResult): string | null {
  const summary = outputOf(result, 'summarize')?.summary;
  return typeof summary === 'string' ? summary : null;
}

/** A chunk's embedding, if it has one. */
export function embeddingOf(result: ChunkResult): number[] | null {
  const embedding = outputOf(result, 'embed')?.embedding;
  return Array.isArray(embedding) && embedding.every((x) => typeof x === 'number') ? embedding : null;
}

/** One line of the embeddings blob (NDJSON), or null for a chunk without an embedding. */
export function embeddingLine(result: ChunkResult): string | null {
  const vector = embeddingOf(result);
  return vector ? `${JSON.stringify({ index: result.index, vector })}\n` : null;
}

export function addUsage(a: TokenUsage | null, b: TokenUsage | null | undefined): TokenUsage | null {
  if (!b) return a;
  if (!a) return { ...b };
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
}

/** The n largest counts, ties in first-seen order (a Map keeps insertion order and sort is stable). */
function topCounts<T>(counts: Map<string, { item: T; count: number }>, n: number): Array<T & { count: number }> {
  return [...counts.values()]
    .sort((a, b) => b.count - a.count)
    .slice(0, n)
    .map(({ item, count }) => ({ ...item, count }));
}

/**
 * Rolls chunk results up into a document result. `add` each analysed chunk (in index order, so lists
 * keep the document's order), then `finish`.
 */
export class DocumentRollUp {
  private analysed = 0;
  private usage: TokenUsage | null = null;
  private readonly models = new Set<string>();
  private readonly chunkSummaries: string[] = [];
  private readonly entities = new Map<string, { item: { value: string; type: string }; count: number }>();
  private readonly keywords = new Map<string, { item: { term: string }; count: number }>();
  private sentiment: { chunks: number; sum: number; min: { index: number; score: number }; max: { index: number; score: number } } | null =
    null;
  private embeddings = { count: 0, dimensions: 0 };
  private readonly promptOutputs: Array<{ index: number; content: string }> = [];

  constructor(private readonly tasks: DocumentTask[]) {}

  add(result: ChunkResult): void {
    this.analysed++;
    this.usage = addUsage(this.usage, result.usage);
    for (const { model } of Object.values(result.outputs)) if (model) this.models.add(model);
    const summary = summaryOf(result);
    if (summary) this.chunkSummaries.push(summary);
    this.addEntities(outputOf(result, 'entities')?.entities);
    this.addKeywords(outputOf(result, 'keywords')?.keywords);
    this.addSentiment(result.index, outputOf(result, 'sentiment')?.score);
    const vector = embeddingOf(result);
    if (vector) this.embeddings = { count: this.embeddings.count + 1, dimensions: vector.length };
    const content = (outputOf(result, 'prompt')?.message as { content?: unknown } | undefined)?.content;
    if (typeof content === 'string') this.promptOutputs.push({ index: result.index, content });
  }

  private addEntities(entities: unknown): void {
    if (!Array.isArray(entities)) return;
    for (const e of entities) {
      if (!isRecord(e) || typeof e.value !== 'string' || typeof e.type !== 'string') continue;
      const key = `${e.type}\u0000${e.value}`;
      const seen = this.entities.get(key);
      if (seen) seen.count++;
      else this.entities.set(key, { item: { value: e.value, type: e.type }, count: 1 });
    }
  }

  private addKeywords(keywords: unknown): void {
    if (!Array.isArray(keywords)) return;
    for (const k of keywords) {
      if (!isRecord(k) || typeof k.term !== 'string') continue;
      const count = typeof k.count === 'number' ? k.count : 1;
      const seen = this.keywords.get(k.term);
      if (seen) seen.count += count;
      else this.keywords.set(k.term, { item: { term: k.term }, count });
    }
  }

  private addSentiment(index: number, score: unknown): void {
    if (typeof score !== 'number' || !Number.isFinite(score)) return;
    const s = this.sentiment;
    if (!s) {
      this.sentiment = { chunks: 1, sum: score, min: { index, score }, max: { index, score } };
      return;
    }
    s.chunks++;
    s.sum += score;
    if (score < s.min.score) s.min = { index, score };
    if (score > s.max.score) s.max = { index, score };
  }

  /** The result; `failedIndexes` are the failed chunks known by index, `total − analysed` the failed count. */
  finish(opts: {
    total: number;
    failedIndexes: number[];
    documentSummary?: string | null;
    embeddingsKey?: string;
    prompt?: string;
  }): DocumentResult {
    const has = (task: DocumentTask) => this.tasks.includes(task);
    const result: DocumentResult = {
      chunks: { total: opts.total, analysed: this.analysed, failed: opts.total - this.analysed, failedIndexes: opts.failedIndexes },
      tasks: this.tasks,
      models: [...this.models].sort(),
      usage: this.usage,
    };
    if (has('summarize')) result.summary = { document: opts.documentSummary ?? null, chunks: this.chunkSummaries.join('\n\n') };
    if (has('entities')) result.entities = { distinct: this.entities.size, top: topCounts(this.entities, TOP_ENTITIES) };
    if (has('keywords')) result.keywords = { distinct: this.keywords.size, top: topCounts(this.keywords, TOP_KEYWORDS) };
    if (has('sentiment')) {
      const s = this.sentiment;
      result.sentiment = s && { chunks: s.chunks, mean: s.sum / s.chunks, min: s.min, max: s.max };
    }
    if (has('embed') && opts.embeddingsKey) result.embeddings = { key: opts.embeddingsKey, ...this.embeddings };
    if (has('prompt')) result.prompt = { prompt: opts.prompt ?? '', outputs: this.promptOutputs };
    return result;
  }
}
