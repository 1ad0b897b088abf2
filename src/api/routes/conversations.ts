/**
 * /v1/conversations: create, read and delete conversations; submit messages, read them, and follow a
 * message's events live (Server-Sent Events). Each handler validates, then asks the ConversationClient.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { CONVERSATION_ID, DEFAULT_MAX_PENDING, MAX_PENDING, MESSAGE_LIMITS, type ChatEvent } from '../../conversations/contract';
import { CHAT_LIMITS, pipelineSchemaFor, stageSchema, targetSchema } from '../../conversations/pipeline';
import { MESSAGE_REF, type ConversationClient } from '../../clients/conversations/client';
import { tenantOf } from '../auth';
import { NO_QUERY, queryOf } from '../body';
import { Problem } from '../problems';
import { resumeAfter, streamEvents, type EventPage } from '../sse';
import { idempotencyKeyOf } from './jobs';

export function buildConversationRequestSchema() {
  return z.strictObject({
    id: z.string().regex(CONVERSATION_ID, 'letters, digits, _ and -, 1–64 characters').describe('Chosen by the client'),
    stages: z
      .array(stageSchema)
      .min(1)
      .max(CHAT_LIMITS.stages)
      .optional()
      .describe('Run one after another for each message; the configured default pipeline’s stages when left out'),
    targets: z.array(targetSchema).max(CHAT_LIMITS.targets).optional().describe('Webhooks that receive every finished message'),
    maxPending: z
      .number()
      .int()
      .min(1)
      .max(MAX_PENDING)
      .default(DEFAULT_MAX_PENDING)
      .describe('Messages that may wait; a message beyond it is refused with 429'),
  });
}

export const messageRequestSchema = z.strictObject({
  text: z.string().min(1).max(MESSAGE_LIMITS.textChars),
  author: z.string().min(1).max(MESSAGE_LIMITS.authorChars).optional(),
  metadata: z
    .record(z.string(), z.unknown())
    .refine((m) => JSON.stringify(m).length <= MESSAGE_LIMITS.metadataChars, `at most ${MESSAGE_LIMITS.metadataChars} characters as JSON`)
    .optional()
    .describe('Kept with the message and sent to targets; not read by handlers'),
});

/** After a message completes, how long its stream waits for the deliveries to settle (a down target retries for minutes). */
const DELIVERY_WAIT_MS = 30_000;

export function conversationsRouter(conversations: ConversationClient, pools: readonly string[]) {
  const router = Router();
  const createSchema = buildConversationRequestSchema();
  const pipelineSchema = pipelineSchemaFor(pools);

  /** The conversation id of the path; an id that cannot exist is a 404, as an unknown one is. */
  const conversationId = (req: Request<{ cid: string }>): string => {
    if (!CONVERSATION_ID.test(req.params.cid)) throw new Problem('not-found', `No conversation ${req.params.cid}`);
    return req.params.cid;
  };
  const messageRef = (req: Request<{ cid: string; mid: string }>): string => {
    if (!MESSAGE_REF.test(req.params.mid)) throw new Problem('not-found', `No message ${req.params.mid}`);
    return req.params.mid;
  };
  const noSuchConversation = (cid: string) => new Problem('not-found', `No conversation ${cid}`);
  const noSuchMessage = (cid: string, mid: string) => new Problem('not-found', `No message ${mid} in conversation ${cid}`);

  router.post('/', async (req, res) => {
    queryOf(req, NO_QUERY);
    if (!req.is('application/json')) throw new Problem('unsupported-media-type');
    const body = createSchema.safeParse(req.body);
    if (!body.success) throw Problem.fromZod(body.error, 'body');
    const pipeline = pipelineSchema.safeParse({
      stages: body.data.stages ?? conversations.defaults.pipeline.stages,
      targets: body.data.targets ?? conversations.defaults.pipeline.targets,
    });
    if (!pipeline.success) throw Problem.fromZod(pipeline.error, 'body');
    const { conversation, created } = await conversations.create(tenantOf(req), body.data.id, {
      pipeline: pipeline.data,
      maxPending: body.data.maxPending,
    });
    res
      .status(created ? 201 : 200)
      .location(conversation.links.self)
      .json(conversation);
  });

  router.get('/:cid', async (req, res) => {
    const cid = conversationId(req);
    queryOf(req, NO_QUERY);
    const conversation = await conversations.get(tenantOf(req), cid);
    if (!conversation) throw noSuchConversation(cid);
    res.json(conversation);
  });

  router.delete('/:cid', async (req, res) => {
    const cid = conversationId(req);
    queryOf(req, NO_QUERY);
    const conversation = await conversations.cancel(tenantOf(req), cid);
    if (!conversation) throw noSuchConversation(cid);
    res.status(202).json(conversation);
  });

  router.post('/:cid/messages', async (req, res) => {
    const cid = conversationId(req);
    queryOf(req, NO_QUERY);
    if (!req.is('application/json')) throw new Problem('unsupported-media-type');
    const key = idempotencyKeyOf(req);
    const body = messageRequestSchema.safeParse(req.body);
    if (!body.success) throw Problem.fromZod(body.error, 'body');
    const submitted = await conversations.submit(tenantOf(req), cid, body.data, key);
    // The configured pipeline cannot run here (a pool it names is not configured): conversations need creating.
    if (!submitted) throw new Problem('not-found', `No conversation ${cid}; create it with POST /v1/conversations`);
    const { message, created } = submitted;
    res
      .status(created ? 202 : 200)
      .location(message.links.self)
      .json(message);
  });

  router.get('/:cid/messages/:mid', async (req, res) => {
    const cid = conversationId(req);
    const mid = messageRef(req);
    queryOf(req, NO_QUERY);
    const message = await conversations.getMessage(tenantOf(req), cid, mid);
    if (!message) throw noSuchMessage(cid, mid);
    res.json(message);
  });

  router.get('/:cid/messages/:mid/events', async (req, res) => {
    const cid = conversationId(req);
    const mid = messageRef(req);
    const afterId = resumeAfter(req);
    const tenant = tenantOf(req);
    if (!(await conversations.exists(tenant, cid))) throw noSuchConversation(cid);
    let completedAt: number | undefined;
    const poll = async (after: number): Promise<EventPage<ChatEvent> | null> => {
      const page = await conversations.events(tenant, cid, mid, after);
      if (!page) return null;
      if (page.status !== 'pending' && page.status !== 'running') completedAt ??= Date.now();
      return { events: page.events, done: page.done || (completedAt !== undefined && Date.now() - completedAt > DELIVERY_WAIT_MS) };
    };
    const first = await poll(afterId);
    if (!first) throw noSuchMessage(cid, mid);
    // A client that has every event: 204 tells EventSource not to reconnect.
    if (first.done && first.events.length === 0) return void res.status(204).end();
    await streamEvents(res, first, async (after) => (await poll(after)) ?? { events: [], done: true }, { afterId });
  });

  return router;
}
