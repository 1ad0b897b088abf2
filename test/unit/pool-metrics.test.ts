/**
 * The API's per-pool scaling gauges, read at scrape time: one read of each pool per scrape whatever the
 * number of gauges, and a pool that cannot be read leaves the rest of /metrics intact. (The values from
 * a real pool are checked end to end in test/integration/metrics.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApiMetrics, type PoolReader } from '../../src/api/metrics';
import { createLogger } from '../../src/logger';
import type { PoolResource } from '../../src/clients/pools';

/** The parts of a pool resource the gauges read. */
const pool = (
  name: string,
  desiredWorkers: number,
  heldBack: PoolResource['scaling']['signal']['heldBack'],
  queue: PoolResource['queue'],
) => ({ name, queue, scaling: { desiredWorkers, workersPolling: 2, reason: '', signal: { heldBack } } }) as unknown as PoolResource;

test('each pool is read once per scrape; an unreadable pool is logged and left out', async () => {
  const reads: string[] = [];
  const reader: PoolReader = {
    async get(name) {
      reads.push(name);
      if (name === 'broken') throw new Error('DescribeTaskQueue: UNAVAILABLE');
      return name === 'fast'
        ? pool('fast', 3, null, { backlog: 20, backlogAgeMs: 4500, addRate: 1, dispatchRate: 1 })
        : pool('paused', 1, 'paused', null);
    },
  };
  const logged: string[] = [];
  const metrics = createApiMetrics();
  metrics.observePools(
    reader,
    ['fast', 'broken', 'paused'],
    createLogger('warn', {}, (line) => logged.push(line)),
  );

  const text = await metrics.registry.metrics();
  assert.deepEqual(reads.sort(), ['broken', 'fast', 'paused'], 'one read per pool for all five gauges');
  const lines = text.split('\n').filter((l) => l.startsWith('switchyard_pool_'));
  assert.deepEqual(lines.sort(), [
    'switchyard_pool_backlog_age_seconds{pool="fast"} 4.5',
    'switchyard_pool_backlog{pool="fast"} 20',
    'switchyard_pool_desired_workers{pool="fast"} 3',
    'switchyard_pool_desired_workers{pool="paused"} 1',
    'switchyard_pool_held_back{pool="fast",reason="breaker"} 0',
    'switchyard_pool_held_back{pool="fast",reason="paused"} 0',
    'switchyard_pool_held_back{pool="fast",reason="rate-limit"} 0',
    'switchyard_pool_held_back{pool="fast",reason="token-limit"} 0',
    'switchyard_pool_held_back{pool="paused",reason="breaker"} 0',
    'switchyard_pool_held_back{pool="paused",reason="paused"} 1',
    'switchyard_pool_held_back{pool="paused",reason="rate-limit"} 0',
    'switchyard_pool_held_back{pool="paused",reason="token-limit"} 0',
    'switchyard_pool_workers_polling{pool="fast"} 2',
    'switchyard_pool_workers_polling{pool="paused"} 2',
  ]);
  assert.match(text, /^# HELP switchyard_pool_desired_workers .*Stateless: no stabilization window/m);
  assert.match(text, /^process_cpu_user_seconds_total /m, 'the other metrics are served');
  assert.equal(logged.length, 1);
  assert.deepEqual(JSON.parse(logged[0]!), {
    ...JSON.parse(logged[0]!),
    msg: 'metrics: cannot read the pool',
    pool: 'broken',
    error: 'DescribeTaskQueue: UNAVAILABLE',
  });

  // The next scrape reads again: nothing is cached between scrapes.
  await metrics.registry.metrics();
  assert.equal(reads.length, 6);
});
