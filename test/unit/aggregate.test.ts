/** Rolling chunk results up into a document result: counts, ranking, running figures, odd outputs skipped. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addUsage, DocumentRollUp, embeddingLine, summaryOf, TOP_ENTITIES, type ChunkResult } from '../../src/documents/aggregate';
import type { DocumentTask } from '../../src/documents/contract';

const chunk = (index: number, outputs: Partial<Record<DocumentTask, unknown>>, usage: ChunkResult['usage'] = null): ChunkResult => ({
  index,
  outputs: Object.fromEntries(
    Object.entries(outputs).map(([task, output]) => [task, { model: task === 'prompt' ? 'gpt' : 'wink', output }]),
  ),
  usage,
});
const finish = (rollUp: DocumentRollUp, total: number, failedIndexes: number[] = []) => rollUp.finish({ total, failedIndexes });

test('entities are counted per occurrence by value and type, most frequent first', () => {
  const rollUp = new DocumentRollUp(['entities']);
  rollUp.add(
    chunk(0, {
      entities: {
        entities: [
          { value: 'Lisbon', type: 'PLACE' },
          { value: 'a@b.example', type: 'EMAIL' },
        ],
      },
    }),
  );
  rollUp.add(
    chunk(1, {
      entities: {
        entities: [
          { value: 'a@b.example', type: 'EMAIL' },
          { value: 'Lisbon', type: 'ORG' },
          { value: 'a@b.example', type: 'EMAIL' },
        ],
      },
    }),
  );
  assert.deepEqual(finish(rollUp, 2).entities, {
    distinct: 3,
    top: [
      { value: 'a@b.example', type: 'EMAIL', count: 3 },
      { value: 'Lisbon', type: 'PLACE', count: 1 },
      { value: 'Lisbon', type: 'ORG', count: 1 },
    ],
  });
});

test('only the most frequent entities are listed; the rest are counted', () => {
  const rollUp = new DocumentRollUp(['entities']);
  const many = Array.from({ length: TOP_ENTITIES + 50 }, (_, i) => ({ value: `n${i}`, type: 'NUMBER' }));
  rollUp.add(chunk(0, { entities: { entities: [...many, { value: 'n7', type: 'NUMBER' }] } }));
  const { entities } = finish(rollUp, 1);
  assert.equal(entities?.distinct, TOP_ENTITIES + 50);
  assert.equal(entities?.top.length, TOP_ENTITIES);
  assert.deepEqual(entities?.top[0], { value: 'n7', type: 'NUMBER', count: 2 });
});

test('keyword counts add up over chunks', () => {
  const rollUp = new DocumentRollUp(['keywords']);
  rollUp.add(
    chunk(0, {
      keywords: {
        keywords: [
          { term: 'factory', count: 2 },
          { term: 'growth', count: 1 },
        ],
      },
    }),
  );
  rollUp.add(chunk(1, { keywords: { keywords: [{ term: 'growth', count: 4 }] } }));
  assert.deepEqual(finish(rollUp, 2).keywords, {
    distinct: 2,
    top: [
      { term: 'growth', count: 5 },
      { term: 'factory', count: 2 },
    ],
  });
});

test('sentiment: mean over the chunks that have a score, and the most negative and positive chunk', () => {
  const rollUp = new DocumentRollUp(['sentiment']);
  rollUp.add(chunk(0, { sentiment: { score: 0.5, label: 'positive' } }));
  rollUp.add(chunk(1, { sentiment: { score: -0.75, label: 'negative' } }));
  rollUp.add(chunk(2, { sentiment: { synthetic: true } }));
  rollUp.add(chunk(3, { sentiment: { score: 0.25 } }));
  assert.deepEqual(finish(rollUp, 4).sentiment, { chunks: 3, mean: 0, min: { index: 1, score: -0.75 }, max: { index: 0, score: 0.5 } });
  assert.equal(finish(new DocumentRollUp(['sentiment']), 0).sentiment, null, 'no chunk with a score');
});

test('summaries are kept in order with the document summary; prompt answers by chunk; models and usage over all calls', () => {
  const rollUp = new DocumentRollUp(['summarize', 'prompt']);
  const usage = { promptTokens: 10, completionTokens: 5, totalTokens: 15 };
  rollUp.add(chunk(0, { summarize: { summary: 'First.' }, prompt: { message: { role: 'assistant', content: 'A' } } }, usage));
  rollUp.add(chunk(2, { summarize: { summary: 'Third.' }, prompt: { message: { role: 'assistant', content: 'C' } } }, usage));
  const result = rollUp.finish({ total: 3, failedIndexes: [1], documentSummary: 'All of it.', prompt: 'Say a letter.' });
  assert.deepEqual(result.summary, { document: 'All of it.', chunks: 'First.\n\nThird.' });
  assert.deepEqual(result.prompt, {
    prompt: 'Say a letter.',
    outputs: [
      { index: 0, content: 'A' },
      { index: 2, content: 'C' },
    ],
  });
  assert.deepEqual(result.chunks, { total: 3, analysed: 2, failed: 1, failedIndexes: [1] });
  assert.deepEqual(result.models, ['gpt', 'wink']);
  assert.deepEqual(result.usage, { promptTokens: 20, completionTokens: 10, totalTokens: 30 });
  assert.equal(result.entities, undefined, 'only the tasks the job ran');
});

test('embeddings: one NDJSON line per chunk that has a vector; the result counts them', () => {
  const rollUp = new DocumentRollUp(['embed']);
  const withVector = chunk(4, { embed: { embedding: [0.6, 0.8], dimensions: 2 } });
  rollUp.add(withVector);
  rollUp.add(chunk(5, { embed: { synthetic: true } }));
  assert.equal(embeddingLine(withVector), '{"index":4,"vector":[0.6,0.8]}\n');
  assert.equal(embeddingLine(chunk(5, { embed: { embedding: ['x'] } })), null);
  assert.deepEqual(rollUp.finish({ total: 2, failedIndexes: [], embeddingsKey: 'jobs/a/j/embeddings.ndjson' }).embeddings, {
    key: 'jobs/a/j/embeddings.ndjson',
    count: 1,
    dimensions: 2,
  });
});

test('outputs of the wrong shape are skipped, not fatal', () => {
  const rollUp = new DocumentRollUp(['entities', 'keywords', 'summarize']);
  rollUp.add(chunk(0, { entities: { entities: [{ value: 3 }, null, 'x'] }, keywords: null, summarize: { summary: 42 } }));
  const result = finish(rollUp, 1);
  assert.deepEqual([result.entities?.distinct, result.keywords?.distinct, result.summary?.chunks], [0, 0, '']);
  assert.equal(summaryOf(chunk(0, { summarize: 'text' })), null);
});

test('usage adds up and stays null while no call reported any', () => {
  const u = { promptTokens: 1, completionTokens: 2, totalTokens: 3 };
  assert.equal(addUsage(null, null), null);
  assert.deepEqual(addUsage(null, u), u);
  assert.deepEqual(addUsage(u, u), { promptTokens: 2, completionTokens: 4, totalTokens: 6 });
});
