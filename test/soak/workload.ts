/**
 * What the soak submits, one kind at a time, each item tagged: inference on the throttling, failing provider
 * (the fake OpenAI server) and on the local model, document jobs, and messages to conversations whose reply
 * comes from the same provider. Each kind knows how to submit an item (through the retrying client: the same
 * Idempotency-Key until the API takes it) and how to read back what became of it.
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
  /** The job's id, or `<conversation>/<message id>`. */
  id: string;
}

/** What became of an item: `open` while it runs (or cannot be read now); `twice` if it was done more than once. */
export type Outcome = 'succeeded' | 'failed' | 'open' | 'missing' | 'twice';

export interface Kind {
  name: string;
  submit(api: SoakApi, tag: string): Promise<Entry>;
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

async function accept(api: SoakApi, path: string, body: unknown, tag: string): Promise<any> {
  const res = await postUntilAnswered(`${api.url}${path}`, body, { ...auth(api), 'idempotency-key': tag });
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
