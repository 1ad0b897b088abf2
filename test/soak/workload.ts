/**
 * What the soak submits, one kind at a time, each item tagged: inference on the throttling, failing provider
 * (the fake OpenAI server) and on the local model, document jobs, messages to conversations whose reply
 * comes from the same provider, and batches whose lines are items of their own. Each kind knows how to submit
 * (through the retrying client: the same Idempotency-Key until the API takes it) and how to read back what
 * became of an item.
 */
import { randomUUID } from 'node:crypto';
import type { FakeOpenAI } from '../../testkit/fake-openai';
import { postUntilAnswered } from '../../testkit/retrying-client';

export interface SoakApi {
  url: string;
  key: string;
}

/** An accepted item: what it is read back by. */
export interface Entry {
  kind: string;
  tag: string;
  /** The job's id, `<conversation>/<message id>`, or `<batch id>/<custom_id>`. */
  id: string;
}

/** What became of an item: `open` while it runs (or cannot be read now); `twice` if it was done more than once. */
export type Outcome = 'succeeded' | 'failed' | 'open' | 'missing' | 'twice';

export interface Kind {
  name: string;
  /** Submitted every this many rounds (every round when unset): a kind whose one submission holds many items comes less often. */
  every?: number;
  /** The item accepted, or the items: a batch's lines. */
  submit(api: SoakApi, tag: string): Promise<Entry | Entry[]>;
  read(api: SoakApi, entry: Entry): Promise<Outcome>;
}

const ENDED = ['succeeded', 'failed', 'cancelled', 'timed_out'];
/** Generous: the provider fails a share of calls, and processes die under the jobs. */
const JOB_RETRY = { maxAttempts: 20, initialIntervalMs: 200, maxIntervalMs: 2000 };

const auth = (api: SoakApi) => ({ authorization: `Bearer ${api.key}` });

/** GETs `path`; undefined while the API cannot answer (it is being restarted) or answers 5xx. */
export async function read(api: SoakApi, path: string): Promise<{ status: number; body: any } | undefined> {
  try {
    const res = await fetch(`${api.url}${path}`, { headers: auth(api) });
    if (res.status >= 500) return undefined;
    return { status: res.status, body: await res.json() };
  } catch {
    return undefined;
  }
}

async function accept(api: SoakApi, path: string, body: unknown, tag: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await postUntilAnswered(`${api.url}${path}`, body, { ...auth(api), 'idempotency-key': tag, ...headers });
  if (res.status !== 200 && res.status !== 201 && res.status !== 202)
    throw new Error(`${tag}: POST ${path} → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A job's outcome; `check` may say it was done twice from what the job shows. */
async function jobOutcome(api: SoakApi, id: string, check?: (job: any) => boolean): Promise<Outcome> {
  const res = await read(api, `/v1/jobs/${id}`);
  if (!res) return 'open';
  if (res.status === 404) return 'missing';
  if (!ENDED.includes(res.body.status)) return 'open';
  if (check && !check(res.body)) return 'twice';
  return res.body.status === 'succeeded' ? 'succeeded' : 'failed';
}

/** A chat job on the throttling provider: done twice if the provider saw more calls for it than it made attempts. */
export function remoteInference(provider: FakeOpenAI): Kind {
  return {
    name: 'inference (remote)',
    async submit(api, tag) {
      const body = {
        type: 'inference',
        task: 'chat',
        pool: 'remote',
        input: { messages: [{ role: 'user', content: tag }] },
        retry: JOB_RETRY,
      };
      return { kind: this.name, tag, id: (await accept(api, '/v1/jobs', body, tag)).id };
    },
    read: (api, entry) => jobOutcome(api, entry.id, (job) => provider.requestsMentioning(entry.tag).length <= job.attempts),
  };
}

export const localInference: Kind = {
  name: 'inference (local)',
  async submit(api, tag) {
    const body = {
      type: 'inference',
      task: 'sentiment',
      pool: 'local',
      input: { text: `The soak goes well, item ${tag}.` },
      retry: JOB_RETRY,
    };
    return { kind: this.name, tag, id: (await accept(api, '/v1/jobs', body, tag)).id };
  },
  read: (api, entry) => jobOutcome(api, entry.id),
};

export const documents: Kind = {
  name: 'document',
  async submit(api, tag) {
    const text = `Soak document ${tag}. Workers die and come back. Every chunk is counted once.`;
    const doc = await postText(api, text, tag);
    const body = { type: 'document', source: { documentId: doc }, pool: 'local', tasks: ['keywords'], retry: JOB_RETRY };
    return { kind: this.name, tag, id: (await accept(api, '/v1/jobs', body, tag)).id };
  },
  read: (api, entry) => jobOutcome(api, entry.id),
};

/** Uploads a document; one that landed but went unanswered and is sent again is only an unused document. */
async function postText(api: SoakApi, text: string, tag: string): Promise<string> {
  const res = await postUntilAnswered(`${api.url}/v1/documents`, text, { ...auth(api), 'content-type': 'text/plain' });
  if (res.status !== 201 && res.status !== 200) throw new Error(`${tag}: upload → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/**
 * Messages to a few conversations whose pipeline is moderation on the local model, then a reply from the
 * throttling provider. Done twice: its conversation accepted more messages than were sent to it.
 */
export function conversationMessages(conversations = 4): Kind {
  const ids = Array.from({ length: conversations }, (_, i) => `soak-${i}-${randomUUID().slice(0, 8)}`);
  const sent = new Map<string, number>();
  let next = 0;
  const retry = { maxAttempts: 20, initialIntervalMs: 200, maxIntervalMs: 2000 };
  const pipeline = (id: string) => ({
    id,
    stages: [
      { name: 'moderation', handlers: [{ name: 'moderation', pool: 'local', task: 'sentiment', retry }] },
      { name: 'respond', handlers: [{ name: 'reply', pool: 'remote', task: 'chat', retry }] },
    ],
    maxPending: 1000,
  });
  return {
    name: 'conversation message',
    async submit(api, tag) {
      const cid = ids[next++ % ids.length]!;
      if (!sent.has(cid)) {
        await accept(api, '/v1/conversations', pipeline(cid), `create-${cid}`);
        sent.set(cid, 0);
      }
      const message = await accept(api, `/v1/conversations/${cid}/messages`, { text: `Soak message ${tag}`, author: 'soak' }, tag);
      sent.set(cid, sent.get(cid)! + 1);
      return { kind: this.name, tag, id: `${cid}/${message.id}` };
    },
    async read(api, entry) {
      const [cid, mid] = entry.id.split('/') as [string, string];
      const [message, conversation] = await Promise.all([
        read(api, `/v1/conversations/${cid}/messages/${mid}`),
        read(api, `/v1/conversations/${cid}`),
      ]);
      if (!message || !conversation) return 'open';
      if (message.status === 404) return 'missing';
      if (!ENDED.includes(message.body.status)) return 'open';
      if (conversation.body.lastSeq > sent.get(cid)!) return 'twice';
      return message.body.status === 'succeeded' ? 'succeeded' : 'failed';
    },
  };
}

/** Lines of each batch, and rounds between two batches: a batch brings its lines as items at once. */
const BATCH_LINES = 25;
const BATCH_EVERY = 10;
const BATCH_ENDED = ['completed', 'failed', 'expired', 'cancelled'];
/** While a batch runs, its items' reads within this share one read of the batch. */
const BATCH_READ_EVERY_MS = 500;

type BatchItems = Map<string, Outcome>;

/**
 * Batches of BATCH_LINES lines, every BATCH_EVERY rounds, each line an item: OpenAI chat lines on the throttling
 * provider and Switchyard sentiment lines on the local model, in turn. Once a batch has ended, an item is what
 * its output or errors file says; done twice if its custom_id is in them more than once, lost if in neither.
 */
export function batches(): Kind {
  let submitted = 0;
  const ended = new Map<string, BatchItems>();
  const reads = new Map<string, { at: number; items: Promise<BatchItems | Outcome> }>();
  const line = (remote: boolean, customId: string) =>
    remote
      ? {
          custom_id: customId,
          method: 'POST',
          url: '/v1/chat/completions',
          body: { messages: [{ role: 'user', content: `Soak line ${customId}` }] },
        }
      : { custom_id: customId, task: 'sentiment', input: { text: `The soak batch goes well, line ${customId}.` } };

  /** What became of the batch's items: per custom_id once it has ended, else `open` (or `missing`: no such batch). */
  async function readBatch(api: SoakApi, batchId: string): Promise<BatchItems | Outcome> {
    const res = await read(api, `/v1/batches/${batchId}`);
    if (!res) return 'open';
    if (res.status === 404) return 'missing';
    if (!BATCH_ENDED.includes(res.body.status)) return 'open';
    const [output, errors] = await Promise.all([
      readLines(api, `/v1/batches/${batchId}/output`),
      readLines(api, `/v1/batches/${batchId}/errors`),
    ]);
    if (!output || !errors) return 'open';
    const items: BatchItems = new Map();
    for (const [lines, outcome] of [
      [output, 'succeeded'],
      [errors, 'failed'],
    ] as const) {
      for (const { custom_id } of lines) items.set(custom_id, items.has(custom_id) ? 'twice' : outcome);
    }
    ended.set(batchId, items);
    reads.delete(batchId);
    return items;
  }

  /** A running batch's items share one read of it for a moment, rather than each reading it again. */
  function latest(api: SoakApi, batchId: string): Promise<BatchItems | Outcome> {
    const last = reads.get(batchId);
    if (last && Date.now() - last.at <= BATCH_READ_EVERY_MS) return last.items;
    const items = readBatch(api, batchId);
    reads.set(batchId, { at: Date.now(), items });
    return items;
  }

  return {
    name: 'batch item',
    every: BATCH_EVERY,
    async submit(api, tag) {
      const remote = submitted++ % 2 === 0;
      const customIds = Array.from({ length: BATCH_LINES }, (_, i) => `${tag}-${String(i).padStart(2, '0')}`);
      const file = customIds.map((id) => `${JSON.stringify(line(remote, id))}\n`).join('');
      const path = `/v1/batches?pool=${remote ? 'remote' : 'local'}`;
      const batch = await accept(api, path, file, tag, { 'content-type': 'application/x-ndjson' });
      return customIds.map((id) => ({ kind: this.name, tag: id, id: `${batch.id}/${id}` }));
    },
    async read(api, entry) {
      const [batchId, customId] = entry.id.split('/') as [string, string];
      const items = ended.get(batchId) ?? (await latest(api, batchId));
      return typeof items === 'string' ? items : (items.get(customId) ?? 'missing');
    },
  };
}

/** GETs a JSON Lines file, parsed; undefined while the API cannot answer it. */
async function readLines(api: SoakApi, path: string): Promise<any[] | undefined> {
  try {
    const res = await fetch(`${api.url}${path}`, { headers: auth(api) });
    const text = await res.text();
    if (res.status !== 200) return undefined;
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as unknown);
  } catch {
    return undefined;
  }
}
