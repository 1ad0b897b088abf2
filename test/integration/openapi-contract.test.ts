/**
 * The API does what its OpenAPI document says. Schemathesis generates requests from /openapi.json —
 * valid and invalid ones, undeclared methods, and sequences along the links it infers (create, read,
 * delete) — sends them to a real stack and checks every answer with all of its checks: statuses,
 * content types, headers and bodies as documented, valid requests accepted and invalid ones refused,
 * 405 with Allow for undeclared methods, no resource readable after its DELETE, no 5xx.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runSchemathesis } from '../../testkit/schemathesis';
import { Stack } from '../../testkit/stack';

/** One key that is a tenant's and an operator's, so the pool operations are exercised too. */
const KEY = 'contract-key-0123456789abcdef';
/** Bounded and seeded: the same few hundred requests on every run, in a minute or two. */
const EXAMPLES_PER_OPERATION = 10;
const SEED = 20261207;

let stack: Stack;

before(async () => {
  stack = await new Stack({
    env: {
      SWITCHYARD_API_KEYS: `openapi-contract:${KEY}`,
      SWITCHYARD_OPERATOR_KEYS: KEY,
      // Webhooks and targets are accepted only when they can be signed.
      SWITCHYARD_WEBHOOK_SECRET: 'contract-webhook-secret-0123456789',
    },
  }).start();
});
after(() => stack?.stop());

/** Schemathesis' report from its failures on: what failed, how to reproduce it, and its summary. */
const failuresOf = (output: string) => output.slice(Math.max(0, output.search(/^=+ (FAILURES|ERRORS) =+$/m))).slice(-20_000);

test('schemathesis, all checks, finds no failure', async () => {
  const run = await runSchemathesis(
    [
      'run',
      `${stack.apiUrl}/openapi.json`,
      '--checks=all',
      `--max-examples=${EXAMPLES_PER_OPERATION}`,
      `--seed=${SEED}`,
      '--workers=2',
      '--generation-database=none',
      '--request-timeout=20',
      `--header=Authorization: Bearer ${KEY}`,
    ],
    8 * 60_000,
  );
  assert.equal(run.code, 0, `schemathesis failed:\n${failuresOf(run.output)}`);
  assert.match(run.output, /Test cases:\s+\d+ generated/, run.output.slice(-2000));
});
