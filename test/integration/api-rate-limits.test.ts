/**
 * Per-tenant API rate limits on a real API process: a tenant over its rate gets 429 with Retry-After and
 * the RateLimit fields while another tenant goes on unaffected; a tenant's override applies; operators
 * and the unauthenticated endpoints are not limited. The API is told it is one of two replicas, so each
 * quota it announces and enforces is half the tenant's rate.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Stack } from '../../testkit/stack';
import { eventually } from '../../testkit/wait';

const REPLICAS = 2;
/** The default: 2 per second on this replica. */
const DEFAULT_RATE = 4;
/** globex's override: 50 per second on this replica. */
const GLOBEX_RATE = 100;
const OPERATOR_KEY = 'operator-key-rates-0123456789';
/** A path every tenant may ask, answered without a call to Temporal (no such job): the cheapest answer there is. */
const CHEAP = '/v1/jobs/not-a-job-id';

let stack: Stack;

before(async () => {
  stack = new Stack({
    env: {
      SWITCHYARD_DEFAULT_REQUESTS_PER_SECOND: String(DEFAULT_RATE),
      SWITCHYARD_API_REPLICAS: String(REPLICAS),
      SWITCHYARD_OPERATOR_KEYS: OPERATOR_KEY,
    },
  });
  stack.env.SWITCHYARD_TENANTS = JSON.stringify({ [stack.tenant('globex')]: { requestsPerSecond: GLOBEX_RATE } });
  await stack.startApi();
});
after(() => stack?.stop());

/** RateLimit / RateLimit-Policy as draft-ietf-httpapi-ratelimit-headers-10 writes them: `"name";key=value;…`. */
function fieldOf(value: string | null): Record<string, string> {
  assert.ok(value, 'the field is there');
  const [name, ...params] = value.split(';');
  return { name: JSON.parse(name!), ...Object.fromEntries(params.map((p) => p.split('=') as [string, string])) };
}

test('a tenant over its rate gets 429 with Retry-After and RateLimit; another tenant, with its override, is unaffected', async () => {
  const quota = DEFAULT_RATE / REPLICAS;
  const startedAt = performance.now();
  const answers = await Promise.all(Array.from({ length: 20 }, () => stack.call('GET', CHEAP)));
  const seconds = (performance.now() - startedAt) / 1000;
  const admitted = answers.filter((a) => a.status === 404);
  const refused = answers.filter((a) => a.status === 429);
  assert.equal(admitted.length + refused.length, answers.length, answers.map((a) => a.status).join(' '));
  // A full bucket, then its refill while the requests came in.
  assert.ok(admitted.length >= 1 && admitted.length <= quota + Math.ceil(quota * seconds), `${admitted.length} admitted in ${seconds} s`);
  assert.ok(refused.length >= 1, 'some were refused');

  for (const answer of answers) {
    assert.deepEqual(fieldOf(answer.headers.get('ratelimit-policy')), { name: 'tenant', q: String(quota), w: '1' });
    const limit = fieldOf(answer.headers.get('ratelimit'));
    assert.equal(limit.name, 'tenant');
    assert.ok(Number(limit.r) >= 0 && Number(limit.r) < quota, `r=${limit.r}`);
  }
  const refusal = refused[0]!;
  assert.match(refusal.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(refusal.body.code, 'rate-limited');
  assert.deepEqual(refusal.body['violated-policies'], ['tenant']);
  assert.equal(refusal.headers.get('retry-after'), '1');
  assert.deepEqual(fieldOf(refusal.headers.get('ratelimit')), { name: 'tenant', r: '0', t: '1' });

  // globex, at the same moment: its own bucket, at its override's share.
  const globex = await Promise.all(Array.from({ length: 10 }, () => stack.call('GET', CHEAP, { as: 'globex' })));
  assert.deepEqual(
    globex.map((a) => a.status),
    Array(10).fill(404),
  );
  assert.deepEqual(fieldOf(globex[0]!.headers.get('ratelimit-policy')), { name: 'tenant', q: String(GLOBEX_RATE / REPLICAS), w: '1' });

  // The bucket refills: acme is served again (a refused request takes nothing from it).
  await eventually('acme served again', async () => ((await stack.call('GET', CHEAP)).status === 404 ? true : undefined));
});

test('an operator is never limited and gets no RateLimit fields', async () => {
  const answers = await Promise.all(
    Array.from({ length: 30 }, () =>
      stack.call('GET', '/v1/pools/no-such-pool', { as: null, headers: { authorization: `Bearer ${OPERATOR_KEY}` } }),
    ),
  );
  assert.deepEqual(
    answers.map((a) => a.status),
    Array(30).fill(404),
  );
  for (const answer of answers) assert.equal(answer.headers.get('ratelimit'), null);
});

test('health, readiness, the OpenAPI document and the docs are not limited', async () => {
  for (const path of ['/healthz', '/readyz', '/openapi.json', '/docs']) {
    const answers = await Promise.all(Array.from({ length: 10 }, () => stack.call('GET', path, { as: null })));
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(10).fill(200),
      path,
    );
    assert.equal(answers[0]!.headers.get('ratelimit'), null, path);
  }
});
