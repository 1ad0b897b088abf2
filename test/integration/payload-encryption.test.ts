/**
 * Encryption end to end, on real processes: what Temporal stores of a job, a document job and a
 * conversation — read straight from the server with the `temporal` CLI, not through Switchyard — holds none
 * of their text, nor do the blob files, while the API reads all of it back; the codec server decodes those
 * payloads for an operator (the CLI's --codec-endpoint included) and for no one else, answers bad bodies
 * with problems and the Temporal UI's origin alone with CORS; after a new key is put in front of the old
 * one, everything written under the old key still reads; and without keys, the API refuses to leave loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { conversationWorkflowId } from '../../src/conversations/contract';
import { newKeyEntry } from '../../src/crypto/key-ring';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../src/temporal/codec';
import { runRefusedApi, Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const OPERATOR = 'codec-operator-key-0123456789';
const UI_ORIGIN = 'http://127.0.0.1:8233';
/** Words found nowhere else: each text carries its own, so a leak names what leaked. */
const tag = (what: string) => `${what}${randomBytes(4).toString('hex')}`;
const JOB_WORD = tag('kestrel');
const DOC_WORD = tag('heron');
const MESSAGE_WORD = tag('plover');
const WORDS = [JOB_WORD, DOC_WORD, MESSAGE_WORD];

let stack: Stack;
const oldKey = newKeyEntry('k-old');
before(async () => {
  stack = await new Stack({
    env: { SWITCHYARD_OPERATOR_KEYS: OPERATOR, SWITCHYARD_ENCRYPTION_KEYS: oldKey, TEMPORAL_UI_URL: UI_ORIGIN },
  }).start();
});
after(() => stack?.stop());

/** `temporal <args>` against the stack's server, as an operator without Switchyard would run it. */
async function temporal(...args: string[]): Promise<string> {
  const cli = process.env.TEMPORAL_CLI_PATH;
  assert.ok(cli, 'TEMPORAL_CLI_PATH is not set: run the tests with `npm test`');
  const { stdout } = await promisify(execFile)(cli, [...args, '--address', stack.env.TEMPORAL_ADDRESS!, '--namespace', 'default'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Every workflow of the stack's tenant, with its history as `temporal workflow show --output json` prints it. */
async function rawHistories(...codec: string[]): Promise<Map<string, string>> {
  const listed = JSON.parse(await temporal('workflow', 'list', '--query', `JobTenant = '${stack.tenant()}'`, '--output', 'json')) as {
    execution: { workflowId: string; runId: string };
  }[];
  const histories = new Map<string, string>();
  for (const { execution } of listed) {
    const key = `${execution.workflowId} ${execution.runId}`;
    histories.set(key, await temporal('workflow', 'show', '-w', execution.workflowId, '-r', execution.runId, '--output', 'json', ...codec));
  }
  return histories;
}

/** The words `text` holds, as it is and in every base64 string value within it (payload data, metadata). */
function wordsIn(text: string): string[] {
  const decoded = [...text.matchAll(/"([A-Za-z0-9+/=_-]{8,})"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('latin1'));
  return WORDS.filter((word) => text.includes(word) || decoded.some((d) => d.includes(word)));
}

const asOperator = { as: null, headers: { authorization: `Bearer ${OPERATOR}` } } as const;

let jobId = '';
let documentJobId = '';
const conversationId = `enc-${randomBytes(3).toString('hex')}`;

describe('what Temporal and the blob store keep', () => {
  before(async () => {
    const job = await stack.call('POST', '/v1/jobs', {
      body: { type: 'inference', task: 'summarize', input: { text: `The ${JOB_WORD} report is late. The team will finish it on Friday.` } },
    });
    assert.equal(job.status, 202, JSON.stringify(job.body));
    jobId = job.body.id;
    const upload = await stack.upload(`The ${DOC_WORD} survey covers the delta. The river floods each spring.`, 'text/plain');
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const documentJob = await stack.call('POST', '/v1/jobs', {
      body: { type: 'document', source: { documentId: upload.body.id }, tasks: ['summarize', 'keywords'] },
    });
    assert.equal(documentJob.status, 202, JSON.stringify(documentJob.body));
    documentJobId = documentJob.body.id;
    const message = await stack.call('POST', `/v1/conversations/${conversationId}/messages`, {
      body: { text: `The ${MESSAGE_WORD} deploy went smoothly. Everyone is happy.` },
    });
    assert.equal(message.status, 202, JSON.stringify(message.body));
    await Promise.all([stack.waitForJob(jobId, ['succeeded']), stack.waitForJob(documentJobId, ['succeeded'])]);
    await eventually('the message to be answered', async () => {
      const { body } = await stack.call('GET', `/v1/conversations/${conversationId}/messages/1`);
      return body.status === 'succeeded' ? body : undefined;
    });
  });

  test('the API reads every text back', async () => {
    assert.match(JSON.stringify((await stack.call('GET', `/v1/jobs/${jobId}`)).body.result), new RegExp(JOB_WORD));
    assert.match(JSON.stringify((await stack.call('GET', `/v1/jobs/${documentJobId}/result`)).body), new RegExp(DOC_WORD));
    assert.match(
      JSON.stringify((await stack.call('GET', `/v1/conversations/${conversationId}/messages/1`)).body),
      new RegExp(MESSAGE_WORD),
    );
  });

  test("the histories read straight from Temporal hold none of the job's, document's or message's text", async () => {
    const histories = await rawHistories();
    const workflowIds = [...histories.keys()].map((k) => k.split(' ')[0]);
    for (const id of [
      `${stack.tenant()}/${jobId}`,
      `${stack.tenant()}/${documentJobId}`,
      conversationWorkflowId(stack.tenant(), conversationId),
    ])
      assert.ok(workflowIds.includes(id), `${id} is among ${workflowIds.join(', ')}`);
    for (const [run, history] of histories) {
      assert.deepEqual(wordsIn(history), [], `${run}`);
      assert.match(history, /binary\/encrypted|YmluYXJ5L2VuY3J5cHRlZA==/, `${run} has encrypted payloads`);
    }
    // The check can see a leak: the same histories shown through the codec server hold the texts they carry
    // (a document's text is in the blob store, its history holds references).
    const decoded = [...(await rawHistories('--codec-endpoint', `${stack.apiUrl}/codec`, '--codec-auth', `Bearer ${OPERATOR}`)).values()];
    assert.deepEqual(wordsIn(decoded.join('\n')), [JOB_WORD, MESSAGE_WORD]);
  });

  test('no blob file holds the document or the message, which the blob store reads back', async () => {
    const dir = path.join(stack.env.SWITCHYARD_DATA_DIR!, 'blobs');
    const keys = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((key) => fs.statSync(path.join(dir, key)).isFile());
    assert.ok(keys.length >= 4, `blobs: ${keys.join(', ')}`);
    for (const key of keys) assert.deepEqual(wordsIn(fs.readFileSync(path.join(dir, key), 'latin1')), [], key);
    const read = await Promise.all(keys.map(async (key) => (await stack.blobs().get(key)).toString('latin1')));
    assert.deepEqual(wordsIn(read.join('\n')), [DOC_WORD, MESSAGE_WORD]);
  });
});

describe('the codec server', () => {
  /** The job's input as stored: its workflow's first event, as the CLI prints it (protobuf JSON). */
  async function storedInput(): Promise<{ metadata: Record<string, string>; data: string }> {
    const history = JSON.parse(await temporal('workflow', 'show', '-w', `${stack.tenant()}/${jobId}`, '--output', 'json'));
    return history.events[0].workflowExecutionStartedEventAttributes.input.payloads[0];
  }
  const codec = (direction: string, body: unknown, opts: { as?: null; headers?: Record<string, string> } = asOperator) =>
    stack.call('POST', `/codec/${direction}`, { ...opts, body });

  test("decodes a stored payload for an operator: the UI's request, with X-Namespace and the UI's origin", async () => {
    const stored = await storedInput();
    assert.equal(Buffer.from(stored.metadata.encoding!, 'base64').toString(), ENCRYPTED_ENCODING);
    assert.equal(Buffer.from(stored.metadata[KEY_ID_METADATA]!, 'base64').toString(), 'k-old');
    const answer = await codec(
      'decode',
      { payloads: [stored] },
      { as: null, headers: { ...asOperator.headers, 'x-namespace': 'default', origin: UI_ORIGIN } },
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.headers.get('access-control-allow-origin'), UI_ORIGIN);
    assert.equal(answer.headers.get('access-control-allow-credentials'), 'true');
    const [payload] = answer.body.payloads;
    assert.equal(Buffer.from(payload.metadata.encoding, 'base64').toString(), 'json/plain');
    assert.match(Buffer.from(payload.data, 'base64').toString(), new RegExp(JOB_WORD));
  });

  test('encodes as the workers do, and decodes that back', async () => {
    const plain = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"hello"').toString('base64') };
    const encoded = await codec('encode', { payloads: [plain] });
    assert.equal(encoded.status, 200, JSON.stringify(encoded.body));
    assert.equal(Buffer.from(encoded.body.payloads[0].metadata.encoding, 'base64').toString(), ENCRYPTED_ENCODING);
    assert.deepEqual((await codec('decode', encoded.body)).body, { payloads: [plain] });
  });

  test('refuses a caller without a key (401) and a tenant (403), as problems', async () => {
    const stored = await storedInput();
    for (const [opts, status, code] of [
      [{ as: null }, 401, 'unauthorized'],
      [{ as: 'acme' }, 403, 'forbidden'],
    ] as const) {
      const answer = await codec('decode', { payloads: [stored] }, opts as { as?: null });
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.equal(answer.body.code, code);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.doesNotMatch(JSON.stringify(answer.body), new RegExp(JOB_WORD));
    }
  });

  test('answers malformed and unknown bodies, altered payloads and another namespace with problem+json 400', async () => {
    const stored = await storedInput();
    const altered = {
      ...stored,
      data: Buffer.from(Buffer.from(stored.data, 'base64').map((b, i) => (i === 20 ? b ^ 1 : b))).toString('base64'),
    };
    const cases: [string, { body?: unknown; rawBody?: string; headers?: Record<string, string> }, string][] = [
      ['not JSON', { rawBody: '{"payloads": [' }, 'malformed-json'],
      ['no payloads', { body: {} }, 'invalid-request'],
      ['payloads not a list', { body: { payloads: 'x' } }, 'invalid-request'],
      ['data not base64', { body: { payloads: [{ data: '***' }] } }, 'invalid-request'],
      ['an unknown field', { body: { payloads: [], extra: true } }, 'unknown-field'],
      ['an altered payload', { body: { payloads: [altered] } }, 'undecodable-payload'],
      ['another namespace', { body: { payloads: [stored] }, headers: { 'x-namespace': 'elsewhere' } }, 'invalid-request'],
    ];
    for (const [what, { headers, ...body }, code] of cases) {
      const answer = await stack.call('POST', '/codec/decode', { ...body, as: null, headers: { ...asOperator.headers, ...headers } });
      assert.equal(answer.status, 400, `${what}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, code, what);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
    }
  });

  test("answers the Temporal UI's preflight, and no other origin", async () => {
    const preflight = (origin: string) =>
      fetch(`${stack.apiUrl}/codec/decode`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
      });
    for (const origin of [UI_ORIGIN, 'http://localhost:8233']) {
      const answer = await preflight(origin);
      assert.equal(answer.status, 204);
      assert.equal(answer.headers.get('access-control-allow-origin'), origin);
      assert.equal(answer.headers.get('access-control-allow-credentials'), 'true');
      assert.match(answer.headers.get('access-control-allow-headers') ?? '', /X-Namespace/);
      assert.match(answer.headers.get('access-control-allow-methods') ?? '', /POST/);
    }
    const stranger = await preflight('http://evil.example');
    assert.equal(stranger.headers.get('access-control-allow-origin'), null);
    const post = await stack.call('POST', '/codec/decode', {
      as: null,
      headers: { origin: 'http://evil.example' },
      body: { payloads: [] },
    });
    assert.equal(post.headers.get('access-control-allow-origin'), null);
  });
});

describe('key rotation', () => {
  test('after a new key is put in front, what the old key wrote still reads, and new payloads use the new key', async () => {
    for (const process of stack.processes()) await process.stop();
    stack.env.SWITCHYARD_ENCRYPTION_KEYS = `${newKeyEntry('k-new')},${oldKey}`;
    await stack.start();

    assert.match(JSON.stringify((await stack.call('GET', `/v1/jobs/${jobId}`)).body.result), new RegExp(JOB_WORD));
    assert.match(JSON.stringify((await stack.call('GET', `/v1/jobs/${documentJobId}/result`)).body), new RegExp(DOC_WORD));
    assert.match(
      JSON.stringify((await stack.call('GET', `/v1/conversations/${conversationId}/messages/1`)).body),
      new RegExp(MESSAGE_WORD),
    );
    // The conversation goes on: its next message is written under the new key, its history read under both.
    const next = await stack.call('POST', `/v1/conversations/${conversationId}/messages`, { body: { text: 'A second message.' } });
    assert.equal(next.status, 202, JSON.stringify(next.body));
    await eventually('the second message to be answered', async () =>
      (await stack.call('GET', `/v1/conversations/${conversationId}/messages/2`)).body.status === 'succeeded' ? true : undefined,
    );

    const job = await stack.call('POST', '/v1/jobs', { body: { type: 'inference', task: 'sentiment', input: { text: 'A new job.' } } });
    await stack.waitForJob(job.body.id, ['succeeded']);
    const history = JSON.parse(await temporal('workflow', 'show', '-w', `${stack.tenant()}/${job.body.id}`, '--output', 'json'));
    const input = history.events[0].workflowExecutionStartedEventAttributes.input.payloads[0];
    assert.equal(Buffer.from(input.metadata[KEY_ID_METADATA], 'base64').toString(), 'k-new');
  });
});

test('without encryption keys the API refuses to listen beyond loopback, naming the variable', async () => {
  const { exit, output } = await runRefusedApi({ ...stack.env, API_HOST: '0.0.0.0', SWITCHYARD_ENCRYPTION_KEYS: '' });
  assert.match(exit, /^[1-9]\d*$/, output);
  assert.ok(output.includes('SWITCHYARD_ENCRYPTION_KEYS is empty'), output);
});
