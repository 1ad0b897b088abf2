/** What the ConversationClient refuses, and why: each a SwitchyardError with its own code. */
import { SwitchyardError } from '../../errors';
import type { ConversationResource } from './resource';

/** An explicit create for a conversation that exists with another pipeline or queue limit. */
export class ConversationExistsError extends SwitchyardError {
  override readonly name = 'ConversationExistsError';
  readonly code = 'conversation-exists';
  constructor(readonly conversation: ConversationResource) {
    super(`conversation ${conversation.id} already exists with a different pipeline or maxPending`);
  }
}

/** The conversation was cancelled (DELETE): it takes no more messages, and its id is not reused. */
export class ConversationEndedError extends SwitchyardError {
  override readonly name = 'ConversationEndedError';
  readonly code = 'conversation-ended';
  constructor(readonly conversationId: string) {
    super(`conversation ${conversationId} was deleted; it takes no more messages`);
  }
}

/** A target's URL is one outbound requests may not reach (a private address, say). */
export class TargetRefusedError extends SwitchyardError {
  override readonly name = 'TargetRefusedError';
  readonly code = 'target-refused';
  constructor(
    readonly index: number,
    readonly target: string,
    readonly reason: string,
  ) {
    super(`target ${target}: ${reason}`);
  }
}

/** Targets were given, but nothing could sign their webhooks. */
export class WebhookSecretMissingError extends SwitchyardError {
  override readonly name = 'WebhookSecretMissingError';
  readonly code = 'webhook-secret-missing';
  constructor(readonly tenant: string) {
    super(
      `no webhook secret is configured for tenant ${tenant} (SWITCHYARD_WEBHOOK_SECRET, or webhookSecret in SWITCHYARD_TENANTS), so it can have no targets`,
    );
  }
}

/** The conversation has as many messages waiting as it allows; nothing was accepted. */
export class TooManyPendingError extends SwitchyardError {
  override readonly name = 'TooManyPendingError';
  readonly code = 'too-many-pending';
}

/** An Idempotency-Key used before in this conversation for a different message. */
export class MessageConflictError extends SwitchyardError {
  override readonly name = 'MessageConflictError';
  readonly code = 'message-conflict';
  constructor(readonly messageId: string) {
    super(`Idempotency-Key was already used for message ${messageId} with a different text, author or metadata`);
  }
}

/**
 * The server refused the message before the conversation's workflow saw it, until the submit's deadline
 * (its workflow task ended without processing the update, as one can while a worker restarts). Sending it again is safe.
 */
export class MessageNotTakenError extends SwitchyardError {
  override readonly name = 'MessageNotTakenError';
  readonly code = 'message-not-taken';
  constructor(conversationId: string, options: ErrorOptions) {
    super(`conversation ${conversationId} did not take the message in time (is a workflow worker running?); send it again`, options);
  }
}
