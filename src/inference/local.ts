/**
 * The local provider: offline, deterministic NLP with wink-nlp and its English lite model. No network,
 * no randomness, so the same text always gives the same output — useful for tests and as a free pool.
 */
import type { ItemEntity, ItemSentence, ItsFunction, ItsHelpers, PartOfSpeech, Tokens, WinkMethods } from 'wink-nlp';
import {
  type CallContext,
  type InferenceProvider,
  type InferenceRequest,
  type InferenceResult,
  type InferenceTask,
  ProviderError,
} from './provider';

export const LOCAL_MODEL = 'wink-eng-lite-web-model';
export const LOCAL_TASKS: readonly InferenceTask[] = ['sentiment', 'entities', 'keywords', 'summarize', 'embed'];
export const EMBEDDING_DIMENSIONS = 256;

const KEYWORD_POS: ReadonlySet<PartOfSpeech> = new Set(['NOUN', 'PROPN', 'ADJ']);
/** VADER's convention: scores within ±0.05 of zero read as neutral. */
const NEUTRAL_BAND = 0.05;

// The model takes ~150 ms and tens of MB to load, so load it on first use, once per process; the API
// process imports this module (via providers.ts) but never calls infer, so it never pays for it.
let nlpPromise: Promise<WinkMethods> | undefined;
function loadNlp(): Promise<WinkMethods> {
  nlpPromise ??= Promise.all([import('wink-nlp'), import('wink-eng-lite-web-model')])
    .then(([wink, model]) => wink.default(model.default))
    .catch((err: unknown) => {
      nlpPromise = undefined; // let a later call retry rather than caching the failure forever
      throw err;
    });
  return nlpPromise;
}

interface TokenRow {
  lemma: string;
  normal: string;
  pos: PartOfSpeech;
  stop: boolean;
  type: string;
}

/**
 * The `its` helpers used here. wink types them as methods, but they are plain functions that `out` tells
 * apart by identity, so they are passed as they are, never bound.
 */
interface Its {
  lemma: ItsHelpers['lemma'];
  normal: ItsHelpers['normal'];
  pos: ItsHelpers['pos'];
  stopWordFlag: ItsHelpers['stopWordFlag'];
  type: ItsHelpers['type'];
  sentiment: ItsHelpers['sentiment'];
  detail: ItsHelpers['detail'];
}

/** wink's typings for `its.*` do not match `out`'s parameter type, hence the cast. */
const col = <T>(tokens: Tokens, f: unknown) => tokens.out(f as ItsFunction<T>) as T[];

/** One row per token; wink's `out(its.x)` arrays are index-aligned. */
function rows(tokens: Tokens, its: Its): TokenRow[] {
  const lemma = col<string>(tokens, its.lemma);
  const normal = col<string>(tokens, its.normal);
  const pos = col<PartOfSpeech>(tokens, its.pos);
  const stop = col<boolean>(tokens, its.stopWordFlag);
  const type = col<string>(tokens, its.type);
  return lemma.map((l, i) => ({
    lemma: l.toLowerCase(),
    normal: normal[i] ?? l,
    pos: pos[i] ?? 'X',
    stop: stop[i] ?? false,
    type: type[i] ?? 'word',
  }));
}

/** Words that carry meaning: real words (not numbers, punctuation, urls…) that are not stop words. */
function contentLemmas(tokens: Tokens, its: ItsHelpers): string[] {
  return rows(tokens, its)
    .filter((r) => r.type === 'word' && !r.stop && r.pos !== 'PUNCT' && r.pos !== 'SYM')
    .map((r) => r.lemma);
}

const round3 = (x: number) => Math.round(x * 1000) / 1000 || 0; // `|| 0` turns -0 into 0

function countBy(items: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

function sentiment(nlp: WinkMethods, text: string) {
  const its: Its = nlp.its;
  const doc = nlp.readDoc(text);
  const score = round3(Math.max(-1, Math.min(1, Number(doc.out(its.sentiment)))));
  const label = score > NEUTRAL_BAND ? 'positive' : score < -NEUTRAL_BAND ? 'negative' : 'neutral';
  const sentences: { text: string; score: number }[] = [];
  doc.sentences().each((s: ItemSentence) => sentences.push({ text: s.out().trim(), score: round3(Number(s.out(its.sentiment))) }));
  return { score, label, sentences };
}

function entities(nlp: WinkMethods, text: string) {
  const found: { value: string; type: string }[] = [];
  const its: Its = nlp.its;
  // Copy into plain objects: wink's details have a null prototype.
  nlp
    .readDoc(text)
    .entities()
    .each((e: ItemEntity) => {
      const d = e.out(its.detail) as unknown as { value: string; type: string };
      found.push({ value: d.value, type: d.type });
    });
  return { entities: found };
}

function keywords(nlp: WinkMethods, text: string) {
  const terms = rows(nlp.readDoc(text).tokens(), nlp.its)
    .filter((r) => r.type === 'word' && !r.stop && KEYWORD_POS.has(r.pos) && /\p{L}/u.test(r.lemma))
    .map((r) => r.lemma);
  const ranked = [...countBy(terms)]
    .map(([term, count]) => ({ term, count }))
    // Plain < comparison rather than localeCompare: the order must not depend on the host's locale.
    .sort((a, b) => b.count - a.count || (a.term < b.term ? -1 : a.term > b.term ? 1 : 0));
  return { keywords: ranked.slice(0, 10) };
}

function summarize(nlp: WinkMethods, text: string) {
  const its = nlp.its;
  const sentences: { text: string; words: string[] }[] = [];
  nlp
    .readDoc(text)
    .sentences()
    .each((s: ItemSentence) => sentences.push({ text: s.out().trim(), words: contentLemmas(s.tokens(), its) }));
  const freq = countBy(sentences.flatMap((s) => s.words));
  const maxFreq = Math.max(1, ...freq.values());
  const scored = sentences.map((s, index) => ({
    index,
    score: s.words.reduce((sum, w) => sum + (freq.get(w) ?? 0) / maxFreq, 0),
  }));
  const keep = Math.min(5, Math.max(1, Math.ceil(sentences.length / 3)));
  const chosen = scored
    .sort((a, b) => b.score - a.score || a.index - b.index) // ties go to the earlier sentence
    .slice(0, keep)
    .sort((a, b) => a.index - b.index); // back into document order
  return { summary: chosen.map((c) => sentences[c.index]?.text ?? '').join(' '), sentenceCount: chosen.length };
}

/** 32-bit FNV-1a over UTF-8 bytes: tiny, stable across processes and platforms. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(s, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

function embed(nlp: WinkMethods, text: string) {
  const tokens = nlp.readDoc(text).tokens();
  let features = contentLemmas(tokens, nlp.its);
  // Text of only stop words or symbols still deserves a non-zero (normalisable) vector.
  if (features.length === 0) features = rows(tokens, nlp.its).map((r) => r.normal);
  const v = new Array<number>(EMBEDDING_DIMENSIONS).fill(0);
  for (const f of features) {
    const h = fnv1a(f);
    // Low bits pick the bucket, the top bit the sign, so collisions tend to cancel rather than pile up.
    const i = h % EMBEDDING_DIMENSIONS;
    v[i] = (v[i] ?? 0) + (h >>> 31 ? -1 : 1);
  }
  const norm = Math.hypot(...v);
  return { embedding: norm === 0 ? v : v.map((x) => x / norm), dimensions: EMBEDDING_DIMENSIONS };
}

const handlers: Record<string, (nlp: WinkMethods, text: string) => unknown> = {
  sentiment,
  entities,
  keywords,
  summarize,
  embed,
};

/** Checks a request and returns the work it asks of the model; an invalid request is a ProviderError. */
function prepare(request: InferenceRequest): (nlp: WinkMethods) => InferenceResult {
  const handler = LOCAL_TASKS.includes(request.task) ? handlers[request.task] : undefined;
  if (!handler) throw new ProviderError(`task "${request.task}" is not supported by the local provider`, 'invalid_input');
  const text = request.text;
  if (typeof text !== 'string' || text.trim() === '') {
    throw new ProviderError(`task "${request.task}" needs a non-empty text`, 'invalid_input');
  }
  return (nlp) => ({ task: request.task, model: LOCAL_MODEL, output: handler(nlp, text) });
}

/** The model, once loaded, unless the call was cancelled meanwhile (the first load takes a moment). */
async function model(ctx: CallContext): Promise<WinkMethods> {
  ctx.heartbeat();
  const nlp = await loadNlp();
  ctx.signal.throwIfAborted();
  return nlp;
}

export function createLocalProvider(): InferenceProvider {
  return {
    kind: 'local',
    tasks: LOCAL_TASKS,
    batchTasks: LOCAL_TASKS,
    async infer(request: InferenceRequest, ctx: CallContext): Promise<InferenceResult> {
      ctx.signal.throwIfAborted();
      const work = prepare(request);
      const result = work(await model(ctx));
      ctx.heartbeat();
      return result;
    },
    /** The whole batch in one go on one loaded model; an invalid request fails only itself. */
    async inferBatch(requests: InferenceRequest[], ctx: CallContext): Promise<Array<InferenceResult | ProviderError>> {
      ctx.signal.throwIfAborted();
      const nlp = await model(ctx);
      return requests.map((request) => {
        try {
          const result = prepare(request)(nlp);
          ctx.heartbeat();
          return result;
        } catch (err) {
          if (err instanceof ProviderError) return err;
          throw err;
        }
      });
    },
  };
}
