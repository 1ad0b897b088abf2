/**
 * The OpenAPI document a real API process serves: valid OpenAPI 3.1 by an independent validator, in step
 * with the routes the Express app actually has (each of which answers with a status the document lists),
 * with a JobRequest schema that refuses unknown fields; and /docs serves Swagger UI from this origin
 * (test/integration/docs-ui.test.ts uses it in a browser).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createApp } from '../../src/api/app';
import type { BlobStore } from '../../src/blobs/store';
import { PROBLEMS } from '../../src/api/problems';
import { loadConfig } from '../../src/config';
import { INFERENCE_TASKS } from '../../src/inference/provider';
import { DOCUMENT_TASKS } from '../../src/documents/contract';
import { createLogger } from '../../src/logger';
import type { BatchClient } from '../../src/clients/batches/client';
import type { ConversationClient } from '../../src/clients/conversations/client';
import type { JobClient } from '../../src/clients/jobs/client';
import { sentimentJob, Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

/** A tenant of this file's own, so the job it submits shows up in no other file's lists. */
const TENANT = { tenant: 'openapi-doc', key: 'openapi-doc-key-0123456789abcdef' };
const POOLS = ['local', 'spare'];
const POOL_CONFIG = Object.fromEntries(POOLS.map((p) => [p, { provider: 'local' as const, concurrency: 2 }]));

type Json = any;

let stack: Stack;
let doc: Json;

/** A call as this file's tenant. */
const call = (method: string, path: string, body?: unknown) =>
  stack.call(method, path, { as: null, headers: { authorization: `Bearer ${TENANT.key}` }, body });

before(async () => {
  stack = await new Stack({
    pools: POOL_CONFIG,
    env: { SWITCHYARD_API_KEYS: `${TENANT.tenant}:${TENANT.key}` },
  }).start();
  const answer = await stack.call('GET', '/openapi.json', { as: null });
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  doc = answer.body;
});
after(() => stack?.stop());

interface Operation {
  method: string;
  /** In OpenAPI form: `/v1/jobs/{id}`. */
  path: string;
}
const key = (op: Operation) => `${op.method.toUpperCase()} ${op.path}`;

/** The part of an Express 5 router layer this test reads. */
interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  rawPath?: unknown;
  handle: { stack?: Layer[] };
}

/** Every route the Express app serves, found by walking its router and the routers mounted in it. */
function appOperations(stack: Layer[], prefix = ''): Operation[] {
  return stack.flatMap((layer) => {
    if (layer.route) {
      const path = (prefix + layer.route.path).replace(/(.)\/$/, '$1').replace(/:(\w+)/g, '{$1}');
      return Object.keys(layer.route.methods).map((method) => ({ method, path }));
    }
    if (!layer.handle.stack) return [];
    assert.equal(typeof layer.rawPath, 'string', 'a mounted router without a plain string path');
    return appOperations(layer.handle.stack, prefix + String(layer.rawPath));
  });
}

function documentedOperations(): Operation[] {
  return Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => ({ method, path })),
  );
}

/** Every schema object under `node` that describes a JSON object. */
function objectSchemas(node: Json, at = '#'): { at: string; schema: Json }[] {
  if (!node || typeof node !== 'object') return [];
  const own = node.type === 'object' ? [{ at, schema: node }] : [];
  return [...own, ...Object.entries(node).flatMap(([k, v]) => objectSchemas(v, `${at}/${k}`))];
}

describe('the document', () => {
  test('is valid OpenAPI 3.1 by @seriousme/openapi-schema-validator', async () => {
    assert.ok(Validator.supportedVersions.has('3.1'));
    const validator = new Validator();
    const result = await validator.validate(doc);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, '3.1');
    assert.match(doc.openapi, /^3\.1\.\d+$/);
  });

  test('the validator is not a rubber stamp: a response without a description is invalid', async () => {
    const broken = structuredClone(doc);
    delete broken.paths['/v1/jobs'].post.responses['202'].description;
    assert.equal((await new Validator().validate(broken)).valid, false);
  });

  test('lists exactly the routes the Express app serves', () => {
    const config = loadConfig({ SWITCHYARD_POOLS: JSON.stringify(POOL_CONFIG) });
    // The handlers never run here, so the app needs no Temporal client and no blob store.
    const app = createApp({
      config,
      jobs: {} as JobClient,
      conversations: {} as ConversationClient,
      batches: {} as BatchClient,
      blobs: {} as BlobStore,
      log: createLogger('error'),
    });
    const served = appOperations((app.router as unknown as { stack: Layer[] }).stack).map(key);
    assert.ok(served.length >= 8, `too few routes found: ${served.join(', ')}`);
    assert.deepEqual(new Set(documentedOperations().map(key)), new Set(served));
  });

  test('every documented operation answers with a status it documents, never the 404 for an unknown route', async () => {
    const submitted = await call('POST', '/v1/jobs', sentimentJob('The docs are complete.'));
    const id = submitted.body.id;
    assert.match(id, /^job-[0-9A-Z]{26}$/, JSON.stringify(submitted.body));
    const uploaded = await stack.call('POST', '/v1/documents', {
      as: null,
      headers: { authorization: `Bearer ${TENANT.key}`, 'content-type': 'text/plain' },
      rawBody: 'A document for the docs. It has two sentences.',
    });
    assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
    // Deleted in its turn, so a job of its own: the others must still find theirs.
    const doomed = (await call('POST', '/v1/jobs', sentimentJob('This one is deleted.'))).body.id;
    await eventually('the job to delete to end', async () =>
      (await call('GET', `/v1/jobs/${doomed}`)).body.finishedAt ? true : undefined,
    );
    const batch = await stack.call('POST', '/v1/batches', {
      as: null,
      headers: { authorization: `Bearer ${TENANT.key}`, 'content-type': 'application/x-ndjson' },
      rawBody: Buffer.from(`${JSON.stringify({ custom_id: 'a', task: 'sentiment', input: { text: 'The docs are complete.' } })}\n`),
    });
    assert.equal(batch.status, 202, JSON.stringify(batch.body));
    // A conversation to read and post to, and one to delete.
    assert.equal((await call('POST', '/v1/conversations', { id: 'openapi-doc-deleted' })).status, 201);
    let messageId = '';
    const requests: Record<string, () => ReturnType<Stack['call']>> = {
      'POST /v1/jobs': async () => submitted,
      'GET /v1/jobs': () => call('GET', '/v1/jobs?limit=1'),
      'GET /v1/jobs/{id}': () => call('GET', `/v1/jobs/${id}`),
      'DELETE /v1/jobs/{id}': () => call('DELETE', `/v1/jobs/${doomed}`),
      'GET /v1/jobs/{id}/result': () => call('GET', `/v1/jobs/${id}/result`),
      'POST /v1/jobs/{id}/review': () => call('POST', `/v1/jobs/${id}/review`, { decision: 'approve', reviewer: 'docs' }),
      'POST /v1/jobs/{id}/cancel': () => call('POST', `/v1/jobs/${id}/cancel`),
      'POST /v1/jobs/{id}/retry': () => call('POST', `/v1/jobs/${id}/retry`),
      'GET /v1/jobs/{id}/runs': () => call('GET', `/v1/jobs/${id}/runs`),
      'POST /v1/batches': async () => batch,
      'GET /v1/batches/{id}': () => call('GET', `/v1/batches/${batch.body.id}`),
      'POST /v1/batches/{id}/cancel': () => call('POST', `/v1/batches/${batch.body.id}/cancel`),
      'GET /v1/batches/{id}/output': () => call('GET', `/v1/batches/${batch.body.id}/output`),
      'GET /v1/batches/{id}/errors': () => call('GET', `/v1/batches/${batch.body.id}/errors`),
      'POST /v1/documents': async () => uploaded,
      'GET /v1/documents/{id}': () => call('GET', `/v1/documents/${uploaded.body.id}`),
      'DELETE /v1/documents/{id}': () => call('DELETE', `/v1/documents/${uploaded.body.id}`),
      'POST /v1/conversations': () => call('POST', '/v1/conversations', { id: 'openapi-doc' }),
      'GET /v1/conversations/{cid}': () => call('GET', '/v1/conversations/openapi-doc'),
      'DELETE /v1/conversations/{cid}': () => call('DELETE', '/v1/conversations/openapi-doc-deleted'),
      'POST /v1/conversations/{cid}/messages': async () => {
        const accepted = await call('POST', '/v1/conversations/openapi-doc/messages', { text: 'The docs are complete.' });
        messageId = accepted.body.id;
        return accepted;
      },
      'GET /v1/conversations/{cid}/messages/{mid}': () => call('GET', `/v1/conversations/openapi-doc/messages/${messageId}`),
      'GET /v1/conversations/{cid}/messages/{mid}/events': () => call('GET', `/v1/conversations/openapi-doc/messages/${messageId}/events`),
    };
    for (const op of documentedOperations()) {
      const answer = await (requests[key(op)] ?? (() => call(op.method.toUpperCase(), op.path)))();
      const documented = Object.keys(doc.paths[op.path][op.method].responses);
      assert.ok(documented.includes(String(answer.status)), `${key(op)} answered ${answer.status}, not one of ${documented.join(',')}`);
      assert.notEqual(answer.body?.code, 'not-found', `${key(op)}: ${JSON.stringify(answer.body)}`);
    }
  });

  test('the /v1 operations require the API key and document 401 and 503', () => {
    for (const op of documentedOperations().filter((o) => o.path.startsWith('/v1/'))) {
      const operation = doc.paths[op.path][op.method];
      assert.deepEqual(operation.security, [{ apiKey: [] }], key(op));
      for (const status of ['401', '503']) assert.ok(operation.responses[status], `${key(op)} does not document ${status}`);
    }
    assert.equal(doc.components.securitySchemes.apiKey.scheme, 'bearer');
  });

  test('the Problem schema lists every problem code and type', () => {
    const { code, type } = doc.components.schemas.Problem.properties;
    assert.deepEqual(code.enum, Object.keys(PROBLEMS));
    assert.deepEqual(
      type.enum,
      Object.keys(PROBLEMS).map((c) => `/problems/${c}`),
    );
  });
});

describe('what the document says of methods and deletes', () => {
  /** A path of the document with each parameter filled in. */
  const concrete = (path: string) => path.replace(/\{[^}]+\}/g, 'x');

  test('every path answers a method it does not declare with 405 and Allow naming exactly those it declares', async () => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) {
      const declared = Object.keys(item).map((m) => m.toUpperCase());
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => !declared.includes(m))) {
        const answer = await call(method, concrete(path));
        assert.equal(answer.status, 405, `${method} ${path}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.code, 'method-not-allowed');
        assert.equal(answer.headers.get('allow'), declared.join(', '), `${method} ${path}`);
      }
      const options = await call('OPTIONS', concrete(path));
      assert.equal(options.status, 204, `OPTIONS ${path}`);
      assert.equal(options.headers.get('allow'), declared.join(', '), `OPTIONS ${path}`);
    }
  });

  test('a deleted job answers 404 at once, everywhere, though Temporal removes its history later', async () => {
    const id = (await call('POST', '/v1/jobs', sentimentJob('Soon deleted.'))).body.id;
    await eventually('the job to end', async () => ((await call('GET', `/v1/jobs/${id}`)).body.finishedAt ? true : undefined));
    assert.equal((await call('DELETE', `/v1/jobs/${id}`)).status, 204);
    for (const read of [`/v1/jobs/${id}`, `/v1/jobs/${id}/result`, `/v1/jobs/${id}/runs`]) {
      assert.equal((await call('GET', read)).status, 404, read);
    }
    assert.equal((await call('POST', `/v1/jobs/${id}/retry`)).status, 404);
    assert.equal((await call('DELETE', `/v1/jobs/${id}`)).status, 404);
    const listed = (await call('GET', '/v1/jobs?limit=100')).body.items.map((j: Json) => j.id);
    assert.ok(!listed.includes(id), 'not listed');
  });

  test('a deleted conversation answers 404 at once, and its id is not given out again', async () => {
    const cid = 'openapi-doc-gone';
    assert.equal((await call('POST', '/v1/conversations', { id: cid })).status, 201);
    const message = (await call('POST', `/v1/conversations/${cid}/messages`, { text: 'Soon deleted.' })).body;
    assert.equal((await call('DELETE', `/v1/conversations/${cid}`)).status, 202);
    for (const read of [
      `/v1/conversations/${cid}`,
      `/v1/conversations/${cid}/messages/${message.id}`,
      `/v1/conversations/${cid}/messages/1/events`,
    ]) {
      assert.equal((await call('GET', read)).status, 404, read);
    }
    assert.equal((await call('DELETE', `/v1/conversations/${cid}`)).status, 404);
    assert.equal((await call('POST', '/v1/conversations', { id: cid })).body.code, 'conversation-ended');
  });
});

describe('the JobRequest schema', () => {
  const jobRequest = () => doc.components.schemas.JobRequest;

  test('is the request body of POST /v1/jobs', () => {
    const body = doc.paths['/v1/jobs'].post.requestBody;
    assert.equal(body.required, true);
    assert.equal(body.content['application/json'].schema.$ref, '#/components/schemas/JobRequest');
  });

  test('rejects unknown properties at every level (additionalProperties: false)', () => {
    const objects = objectSchemas(jobRequest());
    // per job type the job, retry and timeouts; inference: both input shapes and a chat message; document: both sources, chunking, review, webhook
    assert.ok(objects.length >= 14, `only ${objects.length} object schemas`);
    for (const { at, schema } of objects) assert.equal(schema.additionalProperties, false, `${at} allows unknown properties`);
  });

  test('lists the tasks and the configured pools, and requires type, task and input', () => {
    const [inference, ...others] = jobRequest().oneOf;
    assert.equal(others.length, 1, 'two job types: inference and document');
    assert.deepEqual(inference.properties.type.const, 'inference');
    assert.deepEqual(inference.properties.task.enum, [...INFERENCE_TASKS]);
    assert.deepEqual(inference.properties.pool.enum, POOLS);
    assert.deepEqual([...inference.required].sort(), ['input', 'task', 'type']);
  });

  test('has the document job: its tasks, pools and both kinds of source, requiring type, source and tasks', () => {
    const document = jobRequest().oneOf[1];
    assert.equal(document.properties.type.const, 'document');
    assert.deepEqual(document.properties.tasks.items.enum, [...DOCUMENT_TASKS]);
    assert.deepEqual(document.properties.pool.enum, POOLS);
    const sources = document.properties.source.anyOf.map((s: Json) => Object.keys(s.properties));
    assert.deepEqual(sources, [['documentId'], ['url']]);
    assert.deepEqual([...document.required].sort(), ['source', 'tasks', 'type']);
  });
});

test('/docs is Swagger UI served from this origin, under a Content-Security-Policy without inline script', async () => {
  const answer = await stack.call('GET', '/docs', { as: null });
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get('content-type') ?? '', /^text\/html/);
  const csp = answer.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html: string = answer.body;
  const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
  assert.ok(scripts.length >= 2, html);
  for (const [tag, attributes, inline] of scripts) {
    assert.equal(inline, '', `an inline script: ${tag}`);
    assert.match(attributes!, / src="\/docs\//, `a script from elsewhere: ${tag}`);
  }
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  for (const asset of assets) {
    assert.match(asset, /^\/docs\//, `an asset from elsewhere: ${asset}`);
    assert.equal((await stack.call('GET', asset, { as: null })).status, 200, asset);
  }
  assert.equal(doc.servers[0].url, '/', 'Try it out calls the origin that served the page');
});
