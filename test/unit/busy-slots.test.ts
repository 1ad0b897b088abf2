/**
 * Busy slots read from pool workers' metrics: a real worker's Prometheus text (test/fixtures), served by
 * local HTTP servers as a worker's endpoint serves it, and endpoints that refuse or hang.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { activitySlotsUsed, metricsUrl, poolBusySlots } from '../../src/scaling/busy-slots';
import { pickFreePort } from '../../src/local/dev-server';

const SAMPLE = readFileSync(path.resolve(__dirname, '../fixtures/pool-worker-metrics.txt'), 'utf8');
const QUEUE = 'bench06d90a-pool-slow';

describe('the slots in a worker metrics text', () => {
  test("a real pool worker's text: 4 activity slots busy on its queue", () => {
    assert.equal(activitySlotsUsed(SAMPLE, QUEUE), 4);
  });

  test('another task queue, or no slot series at all, is unknown, not 0', () => {
    assert.equal(activitySlotsUsed(SAMPLE, 'other-pool-slow'), null);
    assert.equal(activitySlotsUsed(SAMPLE.replace(/^temporal_worker_task_slots_used.*$/m, ''), QUEUE), null);
  });

  test('only activity slots count, not a workflow worker’s', () => {
    const workflowSlots = SAMPLE.replace(/(temporal_worker_task_slots_used\{.*)ActivityWorker(.*) 4$/m, '$1WorkflowWorker$2 3');
    assert.equal(activitySlotsUsed(workflowSlots, QUEUE), null);
    assert.equal(activitySlotsUsed(`${workflowSlots}\n${SAMPLE}`, QUEUE), 4);
  });

  test('an unspecified bind host is scraped on loopback', () => {
    assert.equal(metricsUrl('0.0.0.0:9464'), 'http://127.0.0.1:9464/metrics');
    assert.equal(metricsUrl('[::]:9464'), 'http://[::1]:9464/metrics');
    assert.equal(metricsUrl('10.0.0.5:9465'), 'http://10.0.0.5:9465/metrics');
  });
});

describe("a pool's busy slots from its workers' endpoints", () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => (s.closeAllConnections(), s.close())));

  /** A worker endpoint on a free loopback port; `respond` false leaves requests hanging. */
  async function endpoint(text: string, respond = true): Promise<string> {
    const server = createServer((_req, res) => respond && res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  test('summed over the workers', async () => {
    const idle = SAMPLE.replace(/^(temporal_worker_task_slots_used\{.*\}) 4$/m, '$1 0');
    const two = SAMPLE.replace(/^(temporal_worker_task_slots_used\{.*\}) 4$/m, '$1 2');
    assert.deepEqual(await poolBusySlots([await endpoint(SAMPLE), await endpoint(idle), await endpoint(two)], QUEUE), { busySlots: 6 });
    assert.deepEqual(await poolBusySlots([], QUEUE), { busySlots: 0 }, 'no ready workers run nothing');
  });

  test('one worker that cannot be read makes the sum unknown, and says why', async () => {
    const refused = `127.0.0.1:${await pickFreePort()}`;
    const read = await poolBusySlots([await endpoint(SAMPLE), refused], QUEUE);
    assert.equal(read.busySlots, null);
    assert.match('reason' in read ? read.reason : '', /ECONNREFUSED/);

    const hanging = await poolBusySlots([await endpoint(SAMPLE, false)], QUEUE, 200);
    assert.equal(hanging.busySlots, null);
    assert.match('reason' in hanging ? hanging.reason : '', /timeout/i);

    const wrongQueue = await poolBusySlots([await endpoint(SAMPLE)], 'other-pool-slow');
    assert.match('reason' in wrongQueue ? wrongQueue.reason : '', /no temporal_worker_task_slots_used for other-pool-slow/);
  });
});
