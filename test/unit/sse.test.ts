/**
 * The SSE writer on a real HTTP server: events in the text/event-stream format as they are polled, a
 * comment heartbeat while the stream is quiet, no more polling once the client has gone, and where a
 * client resumes (Last-Event-ID, or ?lastEventId=).
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import express from 'express';
import { errorHandler } from '../../src/api/error-problems';
import { resumeAfter, streamEvents, type EventPage, type StreamedEvent } from '../../src/api/sse';
import { openSse } from '../../testkit/sse-client';
import { eventually } from '../../testkit/wait';

type Event = StreamedEvent & { n: number };
const event = (id: number): Event => ({ id, type: id % 2 ? 'odd' : 'even', n: id * 10 });

let url = '';
let server: ReturnType<express.Express['listen']>;
/** Per test: what each poll returns, and the ids it was asked after. */
let pages: EventPage<Event>[] = [];
let polls: number[] = [];
/** By the stream's `x-stream` header: how often it was polled, and whether the server has finished streaming it. */
const pollsOf = new Map<string, number>();
const finished = new Set<string>();

before(async () => {
  const app = express();
  app.set('query parser', 'simple');
  app.get('/events', async (req, res) => {
    const afterId = resumeAfter(req);
    const name = req.get('x-stream') ?? '';
    await streamEvents(
      res,
      { events: [], done: false },
      async (after) => {
        polls.push(after);
        pollsOf.set(name, (pollsOf.get(name) ?? 0) + 1);
        return pages.shift() ?? { events: [], done: false };
      },
      {
        afterId,
        pollMs: 10,
        heartbeatMs: 100,
      },
    );
    finished.add(name);
  });
  app.get('/resume', (req, res) => void res.json({ after: resumeAfter(req) }));
  app.use(errorHandler(() => {}));
  await new Promise<void>((resolve) => (server = app.listen(0, '127.0.0.1', () => resolve())));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test('events go out as they are polled, each with its id, type and JSON data, until a page is done', async () => {
  pages = [
    { events: [event(1)], done: false },
    { events: [], done: false },
    { events: [event(2), event(3)], done: true },
  ];
  polls = [];
  const stream = await openSse(`${url}/events`);
  await stream.ended;
  assert.equal(stream.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(stream.headers.get('cache-control'), 'no-cache');
  assert.equal(stream.headers.get('x-accel-buffering'), 'no');
  assert.deepEqual(
    stream.events,
    [1, 2, 3].map((id) => ({ id: String(id), event: event(id).type, data: JSON.stringify(event(id)) })),
  );
  assert.deepEqual(polls, [0, 1, 1], 'each poll asks for what comes after the last event sent');
});

test('a quiet stream gets a comment line every heartbeat; polling stops once the client has gone', async () => {
  pages = [];
  polls = [];
  const stream = await openSse(`${url}/events`, { 'x-stream': 'gone' });
  await eventually('two heartbeats', () => (stream.comments.length >= 2 ? true : undefined));
  assert.deepEqual(stream.events, []);
  stream.close();
  await eventually('the server to notice the closed socket and stop streaming', () => (finished.has('gone') ? true : undefined));
  const count = pollsOf.get('gone');
  // Another stream polled five times shows that many poll intervals have passed on the server since.
  const other = await openSse(`${url}/events`, { 'x-stream': 'other' });
  await eventually('another stream to be polled five times', () => ((pollsOf.get('other') ?? 0) >= 5 ? true : undefined));
  other.close();
  assert.equal(pollsOf.get('gone'), count, 'no polls after the client went away');
});

test('a client resumes after Last-Event-ID, or ?lastEventId= when it cannot set headers; the header wins', async () => {
  const resume = async (query: string, headers: Record<string, string> = {}) =>
    (await (await fetch(`${url}/resume${query}`, { headers })).json()) as any;
  assert.deepEqual(await resume(''), { after: 0 });
  assert.deepEqual(await resume('', { 'last-event-id': '7' }), { after: 7 });
  assert.deepEqual(await resume('?lastEventId=4'), { after: 4 });
  assert.deepEqual(await resume('?lastEventId=4', { 'last-event-id': '9' }), { after: 9 });
  assert.equal((await resume('', { 'last-event-id': 'abc' })).code, 'invalid-request');
  assert.equal((await resume('?lastEventId=-1')).code, 'invalid-request');
  assert.equal((await resume('?from=3')).code, 'unknown-field');
});
