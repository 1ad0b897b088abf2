/** The conversation operations of the OpenAPI document, from the same zod schemas that validate them. */
import { z } from 'zod';
import { CONVERSATION_ID } from '../conversations/contract';
import { MESSAGE_REF } from '../clients/conversations/client';
import { acceptedMessageSchema, conversationResourceSchema, messageResourceSchema } from '../clients/conversations/resource';
import { buildConversationRequestSchema, messageRequestSchema } from './routes/conversations';
import { IDEMPOTENCY_KEY } from './routes/jobs';
import { resumeQuerySchema } from './sse';

type Json = Record<string, unknown>;

/** The document's own building blocks (src/api/openapi.ts), so every part of it reads the same. */
export interface OpenApiParts {
  jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json;
  problem(description: string): Json;
  json(description: string, schema: Json): Json;
  ref(name: string): Json;
  queryParamsOf(schema: z.ZodType): Json[];
  security: Json[];
  /** Responses every /v1 operation can give. */
  common: Json;
  /** Responses of an operation with a JSON body. */
  bodyProblems: Json;
}

const chatEventSchema = z
  .object({
    id: z.number().int().min(1).describe('1, 2, … per message; the SSE id'),
    at: z.iso.datetime(),
    type: z
      .string()
      .describe(
        'The SSE event: message.accepted, handler.started, handler.succeeded, handler.failed, handler.cancelled, ' +
          'stage.completed, message.completed, delivery.delivered, delivery.failed',
      ),
  })
  .catchall(z.unknown())
  .describe('One event of a message, as the data: line of an SSE event');

export function conversationOpenApi(p: OpenApiParts): { schemas: Json; paths: Json } {
  const cidParam = { name: 'cid', in: 'path', required: true, schema: { type: 'string', pattern: CONVERSATION_ID.source } };
  const midParam = {
    name: 'mid',
    in: 'path',
    required: true,
    description: 'A message id or its seq',
    schema: { type: 'string', pattern: MESSAGE_REF.source },
  };
  const jsonBody = (name: string) => ({ required: true, content: { 'application/json': { schema: p.ref(name) } } });
  const conversation = (description: string) => p.json(description, p.ref('Conversation'));
  const noSuchConversation = p.problem('No such conversation for this tenant');
  const ended = p.problem('The conversation was deleted');
  return {
    schemas: {
      ConversationRequest: p.jsonSchema(buildConversationRequestSchema(), 'input'),
      Conversation: p.jsonSchema(conversationResourceSchema, 'output'),
      MessageRequest: p.jsonSchema(messageRequestSchema, 'input'),
      AcceptedMessage: p.jsonSchema(acceptedMessageSchema, 'output'),
      Message: p.jsonSchema(messageResourceSchema, 'output'),
      ChatEvent: p.jsonSchema(chatEventSchema, 'output'),
    },
    paths: {
      '/v1/conversations': {
        post: {
          operationId: 'createConversation',
          summary: 'Create a conversation with its pipeline, targets and queue limit',
          security: p.security,
          requestBody: jsonBody('ConversationRequest'),
          responses: {
            '201': conversation('Created'),
            '200': conversation('It exists with the same pipeline and maxPending'),
            ...p.bodyProblems,
            '400': p.problem('Malformed JSON, unknown fields, invalid values, a refused target URL (url-refused), or targets while no webhook secret is configured (webhook-not-configured)'),
            '409': p.problem('It exists with a different pipeline or maxPending (conversation-exists), or was deleted (conversation-ended)'),
            ...p.common,
          },
        },
      },
      '/v1/conversations/{cid}': {
        get: {
          operationId: 'getConversation',
          summary: 'Read a conversation: status, counts, pipeline, targets’ health',
          security: p.security,
          parameters: [cidParam],
          responses: { '200': conversation('The conversation'), '400': p.problem('Query parameters'), '404': noSuchConversation, ...p.common },
        },
        delete: {
          operationId: 'deleteConversation',
          summary: 'Cancel a conversation: the message in progress stops, waiting ones end cancelled',
          security: p.security,
          parameters: [cidParam],
          responses: { '202': conversation('Cancellation requested'), '404': noSuchConversation, '409': ended, ...p.common },
        },
      },
      '/v1/conversations/{cid}/messages': {
        post: {
          operationId: 'submitMessage',
          summary: 'Submit a message; the conversation is created with the default pipeline if it does not exist',
          security: p.security,
          parameters: [
            cidParam,
            { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', pattern: IDEMPOTENCY_KEY.source } },
          ],
          requestBody: jsonBody('MessageRequest'),
          responses: {
            '202': p.json('Accepted: the message has its seq and waits its turn', p.ref('AcceptedMessage')),
            '200': p.json('A repeat of an earlier message with the same Idempotency-Key', p.ref('Message')),
            ...p.bodyProblems,
            '404': noSuchConversation,
            '409': p.problem('The Idempotency-Key was used with a different message (idempotency-conflict), or the conversation was deleted (conversation-ended)'),
            '429': p.problem('The conversation has as many messages waiting as its maxPending (Retry-After is set); nothing was accepted'),
            ...p.common,
          },
        },
      },
      '/v1/conversations/{cid}/messages/{mid}': {
        get: {
          operationId: 'getMessage',
          summary: 'Read a message: per-stage and per-handler status and results, deliveries',
          security: p.security,
          parameters: [cidParam, midParam],
          responses: {
            '200': p.json('The message', p.ref('Message')),
            '400': p.problem('Query parameters'),
            '404': p.problem('No such conversation or message'),
            ...p.common,
          },
        },
      },
      '/v1/conversations/{cid}/messages/{mid}/events': {
        get: {
          operationId: 'streamMessageEvents',
          summary: "A message's events as Server-Sent Events, live; resumes after Last-Event-ID",
          security: p.security,
          parameters: [
            cidParam,
            midParam,
            { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string', pattern: '^[0-9]{1,15}$' } },
            ...p.queryParamsOf(resumeQuerySchema),
          ],
          responses: {
            '200': {
              description:
                'text/event-stream: one SSE event per message event (id, event = its type, data = ChatEvent JSON), a comment every 15 s; ' +
                'it ends after message.completed once the deliveries have settled (or 30 s later)',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            '204': { description: 'Every event after Last-Event-ID was sent and no more will come' },
            '400': p.problem('Last-Event-ID or query parameters'),
            '404': p.problem('No such conversation or message'),
            ...p.common,
          },
        },
      },
    },
  };
}
