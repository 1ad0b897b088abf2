/** The conversation operations of the OpenAPI document, from the same zod schemas that validate them. */
import { z } from 'zod';
import { CONVERSATION_ID, type ChatEventType } from '../conversations/contract';
import { MESSAGE_REF } from '../clients/conversations/client';
import { acceptedMessageSchema, conversationResourceSchema, messageResourceSchema } from '../clients/conversations/resource';
import {
  bodyProblems,
  common,
  idempotencyKeyParam,
  json,
  jsonBody,
  jsonSchema,
  problem,
  queryParamsOf,
  ref,
  security,
  type Json,
} from './openapi-parts';
import { buildConversationRequestSchema, messageRequestSchema } from './routes/conversations';
import { IDEMPOTENCY_KEY } from './routes/jobs';
import { resumeQuerySchema } from './sse';

/** Every event type, once: the compiler checks the list against the contract's union. */
const EVENT_TYPES = Object.keys({
  'message.accepted': true,
  'handler.started': true,
  'handler.succeeded': true,
  'handler.failed': true,
  'handler.cancelled': true,
  'stage.completed': true,
  'message.completed': true,
  'delivery.delivered': true,
  'delivery.failed': true,
} satisfies Record<ChatEventType, true>);

const chatEventSchema = z
  .object({
    id: z.number().int().min(1).describe('1, 2, … per message; the SSE id'),
    at: z.iso.datetime(),
    type: z.enum(EVENT_TYPES as [ChatEventType, ...ChatEventType[]]).describe('The SSE event name'),
  })
  .catchall(z.unknown())
  .describe('One event of a message: the data of an SSE event');

/** One event of the text/event-stream, as OpenAPI 3.1 describes an item of a stream: its SSE fields. */
const serverSentEventSchema: Json = {
  type: 'object',
  required: ['id', 'event', 'data'],
  properties: {
    id: { type: 'string', pattern: '^[1-9][0-9]*$' },
    event: { type: 'string', enum: EVENT_TYPES },
    data: { type: 'string', contentMediaType: 'application/json', contentSchema: ref('ChatEvent') },
  },
  description: 'id: the event id, event: its type, data: the ChatEvent as JSON. Comment lines keep a quiet stream open.',
};

/** The request schema, with the handlers' pools narrowed to the configured ones (which the API checks). */
function conversationRequestSchema(pools: readonly string[]): Json {
  const schema = jsonSchema(buildConversationRequestSchema(), 'input');
  const at = (node: Json, path: string[]): Json => path.reduce((n, key) => n[key] as Json, node);
  at(schema, ['properties', 'stages', 'items', 'properties', 'handlers', 'items', 'properties']).pool = {
    type: 'string',
    enum: [...pools],
  };
  return schema;
}

export function conversationOpenApi(pools: readonly string[]): { schemas: Json; paths: Json } {
  const cidParam = { name: 'cid', in: 'path', required: true, schema: { type: 'string', pattern: CONVERSATION_ID.source } };
  const midParam = {
    name: 'mid',
    in: 'path',
    required: true,
    description: 'A message id or its seq',
    schema: { type: 'string', pattern: MESSAGE_REF.source },
  };
  const conversation = (description: string) => json(description, ref('Conversation'));
  const noSuchConversation = problem('No such conversation for this tenant (or it was deleted)');
  const noSuchMessage = problem('No such conversation or message (or the conversation was deleted)');
  return {
    schemas: {
      ConversationRequest: conversationRequestSchema(pools),
      Conversation: jsonSchema(conversationResourceSchema, 'output'),
      MessageRequest: jsonSchema(messageRequestSchema, 'input'),
      AcceptedMessage: jsonSchema(acceptedMessageSchema, 'output'),
      Message: jsonSchema(messageResourceSchema, 'output'),
      ChatEvent: jsonSchema(chatEventSchema, 'output'),
      ChatServerSentEvent: serverSentEventSchema,
    },
    paths: {
      '/v1/conversations': {
        post: {
          operationId: 'createConversation',
          summary: 'Create a conversation with its pipeline, targets and queue limit',
          security,
          requestBody: jsonBody('ConversationRequest'),
          responses: {
            '201': conversation('Created'),
            '200': conversation('It exists with the same pipeline and maxPending'),
            ...bodyProblems,
            '400': problem(
              'Malformed JSON, unknown fields, invalid values (handler and target names repeated), a refused target URL (url-refused), or targets while no webhook secret is configured (webhook-not-configured)',
            ),
            '409': problem('It exists with a different pipeline or maxPending (conversation-exists), or was deleted (conversation-ended)'),
            ...common,
          },
        },
      },
      '/v1/conversations/{cid}': {
        get: {
          operationId: 'getConversation',
          summary: 'Read a conversation: status, counts, pipeline, targets’ health',
          security,
          parameters: [cidParam],
          responses: { '200': conversation('The conversation'), '400': problem('Query parameters'), '404': noSuchConversation, ...common },
        },
        delete: {
          operationId: 'deleteConversation',
          summary:
            'Delete a conversation: the message in progress stops, waiting ones end cancelled; from then on it answers 404 and its id cannot be used again',
          security,
          parameters: [cidParam],
          responses: { '202': conversation('Deleted; the conversation as it was'), '404': noSuchConversation, ...common },
        },
      },
      '/v1/conversations/{cid}/messages': {
        post: {
          operationId: 'submitMessage',
          summary: 'Submit a message; the conversation is created with the default pipeline if it does not exist',
          security,
          parameters: [cidParam, idempotencyKeyParam(IDEMPOTENCY_KEY)],
          requestBody: jsonBody('MessageRequest'),
          responses: {
            '202': json('Accepted: the message has its seq and waits its turn', ref('AcceptedMessage')),
            '200': json('A repeat of an earlier message with the same Idempotency-Key', ref('Message')),
            ...bodyProblems,
            '404': noSuchConversation,
            '409': problem(
              'The Idempotency-Key was used with a different message (idempotency-conflict), or the conversation was deleted (conversation-ended)',
            ),
            '429': problem('The conversation has as many messages waiting as its maxPending (Retry-After is set); nothing was accepted'),
            ...common,
          },
        },
      },
      '/v1/conversations/{cid}/messages/{mid}': {
        get: {
          operationId: 'getMessage',
          summary: 'Read a message: per-stage and per-handler status and results, deliveries',
          security,
          parameters: [cidParam, midParam],
          responses: { '200': json('The message', ref('Message')), '400': problem('Query parameters'), '404': noSuchMessage, ...common },
        },
      },
      '/v1/conversations/{cid}/messages/{mid}/events': {
        get: {
          operationId: 'streamMessageEvents',
          summary: "A message's events as Server-Sent Events, live; resumes after Last-Event-ID",
          security,
          parameters: [
            cidParam,
            midParam,
            { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string', pattern: '^[0-9]{1,15}$' } },
            ...queryParamsOf(resumeQuerySchema),
          ],
          responses: {
            '200': {
              description:
                'One SSE event per message event, live; the stream ends after message.completed once the deliveries have settled (or 30 s later)',
              content: { 'text/event-stream': { schema: ref('ChatServerSentEvent') } },
            },
            '204': { description: 'Every event after Last-Event-ID was sent and no more will come' },
            '400': problem('Last-Event-ID or query parameters'),
            '404': noSuchMessage,
            ...common,
          },
        },
      },
    },
  };
}
