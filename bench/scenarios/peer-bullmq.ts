/**
 * peer-bullmq: the same job — synthetic inference of 0, 50 and 200 ms, from the same provider code —
 * through BullMQ on Redis (its AOF fsynced once a second, and before every reply: Switchyard's durability)
 * and through Switchyard (HTTP API → Temporal), with the same number of worker processes and slots on
 * each side, in alternating rounds of one run. Per inference time: throughput
 * (closed loop, enough jobs in flight to keep every slot busy), end-to-end latency at a fixed rate both sides sustain, CPU
 * and disk writes per job by process; and, for the 0-ms gap, where Switchyard's time goes. A second
 * series with one slot per process keeps the demand under the Temporal dev server's ceiling.
 */
import http from 'node:http';
import os from 'node:os';
import { OPEN_TENANT } from '../../src/api/auth';
import { workflowIdFor } from '../../src/jobs/ids';
import { startBullmqSide, type BullmqSide } from '../bullmq/side';
import { measureCost } from '../lib/cost';
import { assertNoErrors, closedLoop, completionRate, openLoop, type LoadResult } from '../lib/load';
import type { RedisServer } from '../lib/redis';
import type { Scenario } from '../lib/scenario';
import { startBenchStack, type BenchStack } from '../../testkit/bench-stack';
import { jobBody } from '../lib/submit';
import { gapEvidence, type Evidence } from './peer-bullmq-evidence';
import { report, type Measured } from './peer-bullmq-report';
import { APPENDFSYNC, SETTINGS, SIDES, type BullmqPeer, type PeerSettings, type Series, type Side } from './peer-bullmq-settings';

const poolName = (slots: number, latencyMs: number) => `s${slots}-l${latencyMs}`;
const idealRate = (workers: number, slots: number, latencyMs: number) => (latencyMs ? (workers * slots * 1000) / latencyMs : Infinity);
const synthetic = (slots: number, latencyMs: number) => ({
  provider: 'synthetic' as const,
  concurrency: slots,
  latencyMs,
  jitterMs: 0,
});
const BODY = jobBody('');
const BULLMQ_PEERS = Object.keys(APPENDFSYNC) as BullmqPeer[];

/** POSTs a job over a kept-alive connection; resolves with the job id. */
function postJob(agent: http.Agent, url: string, body: unknown): Promise<string> {
  const data = JSON.stringify(body);
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) };
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const id = res.statusCode === 202 ? (JSON.parse(text) as { id?: string }).id : undefined;
        if (id) resolve(id);
        else reject(new Error(`POST /v1/jobs answered ${res.statusCode}: ${text}`));
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** A Switchyard job as a user runs one: POST /v1/jobs, then wait for the workflow's result (a long poll). */
function switchyardRunner(stack: BenchStack, pool: string) {
  // Idle kept-alive sockets are dropped after 4 s, before the API's (Node's default 5 s), so a request is
  // never sent on a socket the server is closing ("socket hang up").
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 4000 });
  const body = { ...BODY, pool };
  const runner = async () => {
    const id = await postJob(agent, `${stack.apiUrl}/v1/jobs`, body);
    const workflowId = workflowIdFor(OPEN_TENANT, id);
    runner.workflowIds.push(workflowId);
    await stack.client.workflow.getHandle(workflowId).result();
  };
  runner.workflowIds = [] as string[];
  return runner;
}

export const peerBullmq: Scenario = {
  name: 'peer-bullmq',
  description:
    'the same job (synthetic inference of 0, 50 and 200 ms) through BullMQ + Redis (AOF fsync everysec and always) and through Switchyard: throughput, end-to-end latency, and where the 0-ms gap goes',
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const levels = s.series.flatMap((series) =>
      series.latencies.map((latencyMs) => ({ series, latencyMs, pool: poolName(series.slots, latencyMs) })),
    );
    // Each level runs each BullMQ side on a fresh Redis; the report records what they ran.
    const redis: Partial<Record<BullmqPeer, RedisServer>> = {};
    let stack: BenchStack | undefined;
    try {
      const pools = Object.fromEntries(levels.map((l) => [l.pool, synthetic(l.series.slots, l.latencyMs)]));
      stack = await startBenchStack({ pools, poolWorkers: Object.fromEntries(levels.map((l) => [l.pool, 0])), api: true, log });
      const measured: Measured[] = [];
      let evidence: Evidence | undefined;
      for (const level of levels) {
        const found = await runLevel({
          s,
          stack,
          redis,
          log,
          measured,
          ...level,
          evidence: level.series === s.series[0] && level.latencyMs === 0,
        });
        evidence ??= found;
      }
      return report({ s, measured, evidence: evidence!, redis: redis as Record<BullmqPeer, RedisServer>, quick, cores: os.cpus().length });
    } finally {
      await stack?.stop();
    }
  },
};

/** One inference time of one series: every side's workers up, warm-up, alternating rounds, latency, evidence. */
async function runLevel(c: {
  s: PeerSettings;
  stack: BenchStack;
  redis: Partial<Record<BullmqPeer, RedisServer>>;
  log: (line: string) => void;
  measured: Measured[];
  series: Series;
  latencyMs: number;
  pool: string;
  evidence: boolean;
}): Promise<Evidence | undefined> {
  const { s, stack, series, latencyMs, pool } = c;
  const { slots } = series;
  const bulls: Partial<Record<BullmqPeer, BullmqSide>> = {};
  const startBull = async (peer: BullmqPeer) =>
    (bulls[peer] = await startBullmqSide({ appendfsync: APPENDFSYNC[peer], workers: s.workers, slots, latencyMs, log: c.log }));
  try {
    await Promise.all([...BULLMQ_PEERS.map(startBull), stack.startWorkers(pool, s.workers)]);
    const bull = bulls as Record<BullmqPeer, BullmqSide>;
    for (const peer of BULLMQ_PEERS) c.redis[peer] = bull[peer].redis;
    const syRun = switchyardRunner(stack, pool);
    const fire: Record<Side, () => Promise<void>> = {
      bullmq: () => bull.bullmq.run(),
      bullmqAlways: () => bull.bullmqAlways.run(),
      switchyard: syRun,
    };
    const procs: Record<Side, () => { name: string; pid: number }[]> = {
      bullmq: () => bull.bullmq.processes(),
      bullmqAlways: () => bull.bullmqAlways.processes(),
      switchyard: () => stack.processes().filter((p) => !p.name.startsWith('pool:') || p.name === `pool:${pool}`),
    };
    const disk: Record<Side, number> = {
      bullmq: bull.bullmq.redis.pid,
      bullmqAlways: bull.bullmqAlways.redis.pid,
      switchyard: procs.switchyard().find((p) => p.name === 'temporal')!.pid,
    };
    const measure = async (side: Side, phase: Measured['phase'], load: () => Promise<LoadResult>) => {
      const cost = await measureCost(procs[side](), disk[side], load);
      assertNoErrors(`${side}, ${slots} slots, ${latencyMs} ms, ${phase}`, cost.load);
      c.measured.push({ side, slots, latencyMs, phase, ...cost });
      c.log(
        `${s.workers} × ${slots} slots, ${latencyMs} ms, ${side}, ${phase}: ${cost.load.sentAt.length} jobs in ${Math.round(cost.load.durationMs)} ms`,
      );
      return cost.load;
    };
    const inFlight = Math.max(s.minInFlight, 2 * s.workers * slots);
    const closed = (side: Side, count: number) => () => closedLoop({ concurrency: inFlight, count, fire: () => fire[side]() });

    for (const side of SIDES) await closed(side, s.warmupJobs)(); // not measured: JIT, connections, caches
    const jobs = Math.min(s.jobsPerRound, Math.ceil(idealRate(s.workers, slots, latencyMs) * s.roundSeconds));
    const rates: Record<Side, number[]> = { bullmq: [], bullmqAlways: [], switchyard: [] };
    // Alternating, and mirrored every other round (A B C C B A), so a drift of the machine hits every side alike.
    for (let r = 0; r < s.rounds; r++) {
      for (const side of r % 2 ? [...SIDES].reverse() : SIDES) {
        const result = await measure(side, 'throughput', closed(side, jobs));
        rates[side].push(completionRate(result));
      }
    }
    // At a rate every side sustains: half the lowest throughput just measured; the same rate and count for all.
    const rate = Math.max(1, Math.floor(Math.min(...SIDES.map((side) => Math.min(...rates[side]))) / 2));
    if (series.latencyPhase) {
      const count = Math.min(s.latencyJobs, Math.max(10, rate * s.roundSeconds));
      for (const side of [...SIDES].reverse())
        await measure(side, 'latency', () => openLoop({ ratePerSec: rate, count, fire: () => fire[side]() }));
    }
    if (!c.evidence) return undefined;
    const light = () => openLoop({ ratePerSec: rate, count: s.evidenceJobs, fire: syRun });
    return await gapEvidence({
      client: stack.client,
      workflowIds: syRun.workflowIds,
      light,
      stores: disk,
      straceJobs: s.straceJobs,
      closed,
      log: c.log,
    });
  } finally {
    await Promise.all([...Object.values(bulls).map((b) => b.stop()), stack.stopWorkers(pool)]);
  }
}
