import { allHandlersFinished, CancellationScope, condition, continueAsNew, isCancellation, setHandler } from '@temporalio/workflow';
import {
  conversationStateQuery,
  messageEventsQuery,
  messageRecordQuery,
  submitMessageUpdate,
  type ConversationInput,
  type SubmitMessageRequest,
} from '../../src/conversations/contract';
import { Conversation } from './conversation';

/**
 * One conversation: messages are processed one at a time in seq order, each through the pipeline's
 * stages; a stage's handlers run in parallel (an inference activity on their pool, or a child inference
 * job) and its fan-in policy decides it, cancelling handlers no longer needed. A finished message's
 * record is stored, then sent to every target as a signed webhook, each delivery retried on its own
 * without holding up the next message. The workflow runs as long as the conversation exists,
 * continuing as new between messages to keep its history short.
 */
export async function conversation(input: ConversationInput): Promise<never> {
  const chat = new Conversation(input);
  setHandler(submitMessageUpdate, (request) => chat.submit(request), {
    validator: (request: SubmitMessageRequest) => chat.validateSubmit(request),
  });
  setHandler(conversationStateQuery, () => chat.state());
  setHandler(messageRecordQuery, (idOrSeq) => chat.lookup(idOrSeq));
  setHandler(messageEventsQuery, (idOrSeq, afterEventId) => chat.eventsOf(idOrSeq, afterEventId));

  chat.deliveries.pump(); // deliveries the previous run left unsettled, with their webhook ids
  try {
    for (;;) {
      await condition(() => chat.hasPending || chat.timeToContinue());
      if (chat.timeToContinue()) break;
      await chat.processNext();
    }
    await condition(() => chat.deliveries.written && allHandlersFinished());
  } catch (err) {
    if (isCancellation(err)) await CancellationScope.nonCancellable(() => chat.stop());
    throw err;
  }
  return continueAsNew<typeof conversation>({ ...input, carried: chat.carry() });
}
