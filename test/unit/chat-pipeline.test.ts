/** The pipeline schema: defaults, the limits (stages, handlers, targets, quorum) and the errors that name the field. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CHAT_PIPELINE, pipelineSchema, pipelineSchemaFor } from '../../src/conversations/pipeline';

const handler = (name: string, over: Record<string, unknown> = {}) => ({ name, pool: 'local', task: 'sentiment', ...over });
const stage = (handlers: unknown[], fanIn?: unknown) => ({ handlers, ...(fanIn === undefined ? {} : { fanIn }) });

/** The paths and messages of the issues a pipeline has, or [] when it parses. */
function issues(input: unknown, schema = pipelineSchema): string[] {
  const r = schema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

test('a minimal pipeline gets defaults: fan-in all, timeouts, retry, no targets', () => {
  const p = pipelineSchema.parse({ stages: [stage([handler('a')])] });
  assert.equal(p.stages[0]!.fanIn, 'all');
  assert.deepEqual(p.targets, []);
  const h = p.stages[0]!.handlers[0]!;
  assert.equal(h.long, false);
  assert.ok(h.timeoutMs > 0 && h.deadlineMs >= h.timeoutMs);
  assert.deepEqual(h.retry, { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 30_000 });
});

test('the default pipeline: moderation, then intent and reply in parallel, on the local pool', () => {
  assert.deepEqual(
    DEFAULT_CHAT_PIPELINE.stages.map((s) => s.handlers.map((h) => `${h.name}:${h.task}@${h.pool}`)),
    [['moderation:sentiment@local'], ['intent:keywords@local', 'reply:summarize@local']],
  );
  assert.deepEqual(issues(DEFAULT_CHAT_PIPELINE, pipelineSchemaFor(['local'])), []);
});

test('limits: ≤ 5 stages, ≤ 8 handlers per stage, ≤ 5 targets, at least one of each stage and handler', () => {
  const names = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}${i}`);
  assert.deepEqual(issues({ stages: names(5, 's').map((n) => stage([handler(n)])) }), []);
  assert.match(issues({ stages: names(6, 's').map((n) => stage([handler(n)])) }).join(), /^stages: /);
  assert.deepEqual(issues({ stages: [stage(names(8, 'h').map((n) => handler(n)))] }), []);
  assert.match(issues({ stages: [stage(names(9, 'h').map((n) => handler(n)))] }).join(), /^stages\.0\.handlers: /);
  assert.match(issues({ stages: [] }).join(), /^stages: /);
  assert.match(issues({ stages: [stage([])] }).join(), /^stages\.0\.handlers: /);
  const targets = (n: number) => names(n, 't').map((name) => ({ name, url: `https://example.com/${name}` }));
  assert.deepEqual(issues({ stages: [stage([handler('a')])], targets: targets(5) }), []);
  assert.match(issues({ stages: [stage([handler('a')])], targets: targets(6) }).join(), /^targets: /);
});

test('quorum: at least 1, at most the stage’s handlers', () => {
  const three = [handler('a'), handler('b'), handler('c')];
  assert.deepEqual(issues({ stages: [stage(three, { quorum: 3 })] }), []);
  assert.deepEqual(issues({ stages: [stage(three, { quorum: 4 })] }), [
    'stages.0.fanIn.quorum: a quorum of 4 needs at least as many handlers; the stage has 3',
  ]);
  assert.match(issues({ stages: [stage(three, { quorum: 0 })] }).join(), /^stages\.0\.fanIn/);
  assert.match(issues({ stages: [stage(three, 'majority')] }).join(), /^stages\.0\.fanIn/);
});

test('names are unique, prompts are for chat handlers, deadlines cover an attempt, pools must exist', () => {
  assert.deepEqual(issues({ stages: [stage([handler('a')]), stage([handler('a')])] }), [
    'stages.1.handlers.0.name: handler names are unique in a pipeline; "a" repeats',
  ]);
  const t = { name: 'hook', url: 'https://example.com/x' };
  assert.deepEqual(issues({ stages: [stage([handler('a')])], targets: [t, t] }), [
    'targets.1.name: target names are unique; "hook" repeats',
  ]);
  assert.deepEqual(issues({ stages: [stage([handler('a', { prompt: 'be brief' })])] }), [
    'stages.0.handlers.0.prompt: only chat handlers take a prompt; this one does sentiment',
  ]);
  assert.deepEqual(issues({ stages: [stage([handler('a', { task: 'chat', prompt: 'be brief' })])] }), []);
  assert.deepEqual(issues({ stages: [stage([handler('a', { timeoutMs: 5000, deadlineMs: 2000 })])] }), [
    'stages.0.handlers.0.deadlineMs: must be ≥ timeoutMs',
  ]);
  assert.deepEqual(issues({ stages: [stage([handler('a', { pool: 'gpu' })])] }, pipelineSchemaFor(['local'])), [
    'stages.0.handlers.0.pool: unknown pool "gpu"; pools: local',
  ]);
  assert.match(issues({ stages: [stage([handler('a', { colour: 'red' })])] }).join(), /^stages\.0\.handlers\.0: /);
  assert.match(
    issues({ stages: [stage([handler('a')])], targets: [{ name: 'x', url: 'ftp://example.com' }] }).join(),
    /^targets\.0\.url: /,
  );
});
