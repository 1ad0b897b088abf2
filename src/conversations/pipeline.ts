/**
 * A conversation's pipeline as a zod schema: stages run one after another, the handlers of a stage in
 * parallel, and the stage's fan-in policy decides when it is done; targets receive a signed webhook for
 * every finished message. The API validates pipelines with it and config reads SWITCHYARD_CHAT_PIPELINE
 * through it. Workflows import its types only.
 */
import { z } from 'zod';
import { INFERENCE_TASKS } from '../inference/provider';
import { allowedOnlyWhen } from '../jobs/json-schema-rules';
import { POOL_NAME } from '../pool-config';

export const CHAT_LIMITS = { stages: 5, handlersPerStage: 8, targets: 5 } as const;

/** Handler, stage and target names: they appear in events, webhook ids and child workflow ids. */
export const CHAT_NAME = /^[a-z][a-z0-9-]{0,39}$/;
const name = z.string().regex(CHAT_NAME, 'names are lowercase letters, digits and dashes, starting with a letter');

const retry = z
  .strictObject({
    maxAttempts: z.number().int().min(1).max(20).default(3),
    initialIntervalMs: z.number().int().min(100).max(600_000).default(1000),
    backoffCoefficient: z.number().min(1).max(10).default(2),
    maxIntervalMs: z.number().int().min(100).max(3_600_000).default(30_000).describe('At least initialIntervalMs'),
  })
  .refine((r) => r.maxIntervalMs >= r.initialIntervalMs, { path: ['maxIntervalMs'], message: 'must be ≥ initialIntervalMs' });

export const handlerSchema = z
  .strictObject({
    name: name.describe('Unique among the pipeline’s handlers'),
    pool: z.string().regex(POOL_NAME, 'pool names are lowercase letters, digits and dashes'),
    task: z.enum(INFERENCE_TASKS),
    /** The system message of a `chat` handler. */
    prompt: z.string().min(1).max(8000).optional(),
    model: z.string().min(1).max(200).optional(),
    /** Limit for one attempt. */
    timeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Limit for the handler as a whole, retries included: a stuck handler must not hold the conversation forever. */
    deadlineMs: z.number().int().min(1000).max(86_400_000).default(600_000).describe('At least timeoutMs'),
    retry: retry.default(retry.parse({})),
    /** Run as a child inference job (its own workflow, visible as such) instead of one activity. */
    long: z.boolean().default(false),
  })
  .superRefine((h, ctx) => {
    if (h.prompt !== undefined && h.task !== 'chat') {
      ctx.addIssue({ code: 'custom', path: ['prompt'], message: `only chat handlers take a prompt; this one does ${h.task}` });
    }
    if (h.deadlineMs < h.timeoutMs) ctx.addIssue({ code: 'custom', path: ['deadlineMs'], message: 'must be ≥ timeoutMs' });
  })
  .meta(allowedOnlyWhen({ properties: { task: { const: 'chat' } } }, 'prompt'));

/** `all`: every handler settles, the stage succeeds iff all did; `first-success`: the first success wins; `quorum`: k successes win. */
export const fanInSchema = z.union([
  z.enum(['all', 'first-success']),
  z.strictObject({
    quorum: z.number().int().min(1).max(CHAT_LIMITS.handlersPerStage).describe('At most the number of the stage’s handlers'),
  }),
]);

/** "A quorum of k needs k handlers" in JSON Schema: one `if`/`then` per k. */
const quorumNeedsHandlers = Array.from({ length: CHAT_LIMITS.handlersPerStage - 1 }, (_, i) => ({
  if: { required: ['fanIn'], properties: { fanIn: { type: 'object', required: ['quorum'], properties: { quorum: { minimum: i + 2 } } } } },
  then: { properties: { handlers: { minItems: i + 2 } } },
}));

export const stageSchema = z
  .strictObject({
    name: name.optional(),
    handlers: z.array(handlerSchema).min(1).max(CHAT_LIMITS.handlersPerStage),
    fanIn: fanInSchema.default('all'),
  })
  .superRefine((s, ctx) => {
    if (typeof s.fanIn === 'object' && s.fanIn.quorum > s.handlers.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['fanIn', 'quorum'],
        message: `a quorum of ${s.fanIn.quorum} needs at least as many handlers; the stage has ${s.handlers.length}`,
      });
    }
  })
  .meta({ allOf: quorumNeedsHandlers });

export const targetSchema = z.strictObject({ name: name.describe('Unique among the targets'), url: z.url({ protocol: /^https?$/ }) });

export const pipelineSchema = z
  .strictObject({
    stages: z.array(stageSchema).min(1).max(CHAT_LIMITS.stages),
    targets: z.array(targetSchema).max(CHAT_LIMITS.targets).default([]),
  })
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.stages.forEach((stage, i) =>
      stage.handlers.forEach((h, j) => {
        if (seen.has(h.name))
          ctx.addIssue({
            code: 'custom',
            path: ['stages', i, 'handlers', j, 'name'],
            message: `handler names are unique in a pipeline; "${h.name}" repeats`,
          });
        seen.add(h.name);
      }),
    );
    const targets = new Set<string>();
    p.targets.forEach((t, i) => {
      if (targets.has(t.name))
        ctx.addIssue({ code: 'custom', path: ['targets', i, 'name'], message: `target names are unique; "${t.name}" repeats` });
      targets.add(t.name);
    });
  });

export type ChatPipeline = z.output<typeof pipelineSchema>;
export type ChatStage = ChatPipeline['stages'][number];
export type ChatHandler = ChatStage['handlers'][number];
export type ChatTarget = ChatPipeline['targets'][number];
export type FanIn = ChatStage['fanIn'];

/** Handlers whose pool is not one of `pools`, as issues with the handler's path. */
export function unknownPools(pipeline: ChatPipeline, pools: readonly string[]): { path: (string | number)[]; message: string }[] {
  return pipeline.stages.flatMap((stage, i) =>
    stage.handlers
      .map((h, j) => ({ h, j }))
      .filter(({ h }) => !pools.includes(h.pool))
      .map(({ h, j }) => ({ path: ['stages', i, 'handlers', j, 'pool'], message: `unknown pool "${h.pool}"; pools: ${pools.join(', ')}` })),
  );
}

/** The pipeline schema with the configured pools checked too: what the API validates requests with. */
export function pipelineSchemaFor(pools: readonly string[]) {
  return pipelineSchema.superRefine((p, ctx) => {
    for (const issue of unknownPools(p, pools)) ctx.addIssue({ code: 'custom', ...issue });
  });
}

/**
 * The pipeline of a conversation created without one (unless SWITCHYARD_CHAT_PIPELINE says otherwise):
 * a moderation pass, then intent and a reply side by side, all on the local pool.
 */
export const DEFAULT_CHAT_PIPELINE: ChatPipeline = pipelineSchema.parse({
  stages: [
    { name: 'moderation', handlers: [{ name: 'moderation', pool: 'local', task: 'sentiment' }] },
    {
      name: 'respond',
      handlers: [
        { name: 'intent', pool: 'local', task: 'keywords' },
        { name: 'reply', pool: 'local', task: 'summarize' },
      ],
      fanIn: 'all',
    },
  ],
});
