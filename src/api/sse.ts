/**
 * Server-Sent Events: a resource's ordered events over one long response, polled from wherever they are
 * kept (no broker of our own). Each event carries its `id:`, so a client that reconnects resumes after the
 * last one it saw (the Last-Event-ID header, which EventSource sends by itself); comment lines keep
 * proxies and load balancers from closing a quiet stream.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { queryOf } from './body';
import { Problem } from './problems';

export interface StreamedEvent {
  id: number;
  type: string;
}

export interface EventPage<E extends StreamedEvent> {
  events: E[];
  /** Nothing more will come: the stream ends after these events. */
  done: boolean;
}

const POLL_MS = 250;
const HEARTBEAT_MS = 15_000;

/** `?lastEventId=` for clients that cannot set headers; the header wins (EventSource reconnects keep the URL). */
export const resumeQuerySchema = z.strictObject({
  lastEventId: z.coerce.number().int().min(0).optional().describe('Resume after this event id (as the Last-Event-ID header)'),
});

/** The event id a client resumes after: 0 for the whole stream. */
export function resumeAfter(req: Request): number {
  const header = req.get('last-event-id');
  const fromQuery = queryOf(req, resumeQuerySchema).lastEventId;
  if (header === undefined) return fromQuery ?? 0;
  if (!/^[0-9]{1,15}$/.test(header.trim())) throw new Problem('invalid-request', 'Last-Event-ID must be an event id this API sent');
  return Number(header.trim());
}

/** One event in the text/event-stream format: its id, its type as `event:`, itself as JSON `data:`. */
export function formatEvent(event: StreamedEvent): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * Streams `first` and then what `poll(afterId)` returns every 250 ms, until a page is done or the client
 * goes away. A poll that fails ends the stream: the client reconnects and resumes where it was, and gets a
 * problem response if the failure lasts.
 */
export async function streamEvents<E extends StreamedEvent>(
  res: Response,
  first: EventPage<E>,
  poll: (afterId: number) => Promise<EventPage<E>>,
  opts: { afterId: number; pollMs?: number; heartbeatMs?: number },
): Promise<void> {
  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
    // nginx and proxies like it buffer responses unless told not to; events must go out as they happen.
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  let closed = false;
  let wake = () => {};
  res.once('close', () => {
    closed = true;
    wake();
  });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), opts.heartbeatMs ?? HEARTBEAT_MS);
  let afterId = opts.afterId;
  let page = first;
  try {
    for (;;) {
      for (const event of page.events) {
        res.write(formatEvent(event));
        afterId = event.id;
      }
      if (page.done) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.pollMs ?? POLL_MS);
        wake = () => (clearTimeout(timer), resolve());
      });
      if (closed) break;
      page = await poll(afterId);
    }
  } catch {
    // Ending the stream is the answer; headers have gone out, so no problem response can follow.
  } finally {
    clearInterval(heartbeat);
    res.end();
  }
}
