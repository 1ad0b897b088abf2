/**
 * Where a Switchyard job's time goes between its history events: the server stamps every event, so the
 * gap before an event is the hand-off or the work that produced it (e.g. WorkflowTaskScheduled →
 * WorkflowTaskStarted is the dispatch of a workflow task to a worker).
 */
import type { Client } from '@temporalio/client';
import { percentile } from './stats';

export interface HistoryStep {
  /** Event type, e.g. `ActivityTaskStarted`. */
  type: string;
  /** Median ms since the previous event, over the executions given. */
  ms: number;
}

type Event = { eventTime?: { seconds?: unknown; nanos?: number | null } | null } & Record<string, unknown>;

const eventType = (event: Event) => {
  const key = Object.keys(event).find((k) => k.endsWith('EventAttributes') && event[k] != null);
  return key ? key[0]!.toUpperCase() + key.slice(1, -'EventAttributes'.length) : 'Unknown';
};
const eventMs = (event: Event) => Number(event.eventTime?.seconds ?? 0) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6;

/** Per event, the median gap since the previous one, over the executions whose event sequence is the most common one. */
export async function historySteps(client: Client, workflowIds: readonly string[]): Promise<HistoryStep[]> {
  const histories = await Promise.all(
    workflowIds.map(async (id) => ((await client.workflow.getHandle(id).fetchHistory()).events ?? []) as unknown as Event[]),
  );
  const signature = (events: Event[]) => events.map(eventType).join(',');
  const counts = new Map<string, number>();
  for (const h of histories) counts.set(signature(h), (counts.get(signature(h)) ?? 0) + 1);
  const typical = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  const same = histories.filter((h) => signature(h) === typical);
  return (same[0] ?? []).map((event, i) => ({
    type: eventType(event),
    ms:
      i === 0
        ? 0
        : percentile(
            same.map((h) => eventMs(h[i]!) - eventMs(h[i - 1]!)).sort((a, b) => a - b),
            50,
          ),
  }));
}
