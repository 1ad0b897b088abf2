/**
 * `switchyard setup` against the run's server: it says at once what is missing (a namespace the server does not
 * have) instead of waiting, and says what it waits for while the server does not answer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { pickFreePort } from '../../src/local/dev-server';
import { spawnSwitchyard } from '../../testkit/stack';

function setup(env: Record<string, string>) {
  const proc = spawnSwitchyard(['setup'], { ...process.env, ...env });
  return proc.exited.then((status) => ({ status, output: proc.lines.join('\n') }));
}

test('a namespace the server does not have is named at once, with how to create it', { timeout: 30_000 }, async () => {
  const address = process.env.TEMPORAL_ADDRESS;
  assert.ok(address, 'TEMPORAL_ADDRESS is not set: run the tests with `npm test`');
  const namespace = `missing-${randomBytes(3).toString('hex')}`;
  const t0 = Date.now();
  const { status, output } = await setup({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace });
  assert.equal(status, '1', output);
  assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
  assert.match(output, new RegExp(`has no namespace "${namespace}"`));
  assert.match(output, /temporal operator namespace create/);
  assert.doesNotMatch(output, /\n\s+at /, 'no stack trace');
});

test('while the server does not answer, it says what it waits for', { timeout: 30_000 }, async () => {
  const proc = spawnSwitchyard(['setup'], { ...process.env, TEMPORAL_ADDRESS: `127.0.0.1:${await pickFreePort()}` });
  try {
    await proc.waitForLine(/waiting for Temporal at 127\.0\.0\.1:\d+/, 20_000);
  } finally {
    await proc.stop();
  }
});
