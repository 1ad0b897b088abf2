/**
 * batch: one batch of 10,000 items through the API (POST /v1/batches, a JSONL body) on a 0-ms synthetic
 * pool and on 8 slots × 50 ms, each on a fresh stack, against BullMQ's `addBulk` of the same items on
 * Redis with `appendfsync always` (and `everysec` beside it) at the same slots. Per row: items/s from
 * accepted to the last item finished, the upload, accepted → finished, history events per item over the
 * batch's runs, CPU per item by process, and the output checked against the file.
 */
import { BULLMQ_SETTINGS } from '../bullmq/settings';
import { runBullmqBulk, type BullmqBulkResult } from '../bullmq/run';
import { startBatchSide, type BatchFigures, type BatchSide } from '../lib/batch-side';
import type { Appendfsync } from '../lib/redis';
import type { Scenario, ScenarioResult } from '../lib/scenario';
import { round } from '../lib/stats';

/** Slots per worker process on every row: the pool's concurrency, BullMQ's worker concurrency. */
const SLOTS = 8;
const LATENCIES_MS = [0, 50] as const;
type Latency = (typeof LATENCIES_MS)[number];
const SETTINGS = {
  full: { items: 10_000, warmupItems: 500 },
  quick: { items: 1_000, warmupItems: 100 },
};
const APPENDFSYNC: Appendfsync[] = ['always', 'everysec'];

/** What the slots could do if orchestration cost nothing: every slot busy with inference all the time. */
const idealItemsPerSec = (latencyMs: number) => (latencyMs > 0 ? (SLOTS * 1000) / latencyMs : Infinity);

interface Measured {
  switchyard: Record<Latency, BatchFigures>;
  /** The batch settings Switchyard ran with. */
  batchSettings: BatchSide['settings'];
  bullmq: Record<Appendfsync, Record<Latency, BullmqBulkResult>>;
}

export const batch: Scenario = {
  name: 'batch',
  description:
    'one batch of 10,000 items through POST /v1/batches (0 ms, 8 slots × 50 ms) against BullMQ addBulk: items/s, upload, history events and CPU per item',
  async run({ quick, log }) {
    const s = quick ? SETTINGS.quick : SETTINGS.full;
    const switchyard = {} as Measured['switchyard'];
    let batchSettings: BatchSide['settings'] | undefined;
    for (const latencyMs of LATENCIES_MS) {
      log(`Switchyard, ${SLOTS} slots × ${latencyMs} ms: starting`);
      const side = await startBatchSide({ slots: SLOTS, latencyMs, log });
      try {
        await side.warmUp(s.warmupItems);
        const figures = await side.run(s.items);
        log(
          `Switchyard, ${SLOTS} slots × ${latencyMs} ms: upload ${round(figures.uploadMs)} ms, ${round(figures.itemsPerSec)} items/s, ${figures.history.events} events in ${figures.history.runs} runs`,
        );
        switchyard[latencyMs] = figures;
        batchSettings = side.settings;
      } finally {
        await side.stop();
      }
    }
    const bullmq = { always: {}, everysec: {} } as Measured['bullmq'];
    for (const appendfsync of APPENDFSYNC) {
      for (const latencyMs of LATENCIES_MS) {
        log(`BullMQ addBulk, appendfsync ${appendfsync}, ${SLOTS} slots × ${latencyMs} ms: starting`);
        bullmq[appendfsync][latencyMs] = await runBullmqBulk({
          appendfsync,
          jobs: s.items,
          warmupJobs: s.warmupItems,
          slots: SLOTS,
          latencyMs,
          log,
        });
      }
    }
    return report({ switchyard, batchSettings: batchSettings!, bullmq }, s, quick);
  },
};

/** CPU ms per item of the processes that serve: the bench process (the client) and the rest of the machine left out. */
const servingCpu = (cpuMsPerItem: Record<string, number>) =>
  Object.entries(cpuMsPerItem).reduce((sum, [name, ms]) => (['bench', 'other'].includes(name) ? sum : sum + ms), 0);

function report({ switchyard, batchSettings, bullmq }: Measured, s: (typeof SETTINGS)['full'], quick: boolean): ScenarioResult {
  const vsAlways = (itemsPerSec: number, latencyMs: Latency) => round(itemsPerSec / bullmq.always[latencyMs].jobsPerSec, 2);
  const vsIdeal = (itemsPerSec: number, latencyMs: Latency) => (latencyMs > 0 ? round(itemsPerSec / idealItemsPerSec(latencyMs), 2) : '');
  const rows: (string | number)[][] = [];
  for (const latencyMs of LATENCIES_MS) {
    const f = switchyard[latencyMs];
    rows.push([
      `Switchyard, POST /v1/batches, ${SLOTS} slots × ${latencyMs} ms`,
      f.items,
      round(f.uploadMs),
      round(f.acceptedToLastItemMs / 1000, 2),
      round(f.itemsPerSec),
      vsAlways(f.itemsPerSec, latencyMs),
      vsIdeal(f.itemsPerSec, latencyMs),
      round(f.acceptedToFinishedMs / 1000, 2),
      `${round(f.history.events / f.items, 3)} (${f.history.events} in ${f.history.runs} runs)`,
      round(servingCpu(f.cpuMsPerItem), 2),
      f.output,
    ]);
  }
  for (const appendfsync of APPENDFSYNC) {
    for (const latencyMs of LATENCIES_MS) {
      const r = bullmq[appendfsync][latencyMs];
      rows.push([
        `BullMQ addBulk, appendfsync ${appendfsync}, ${SLOTS} slots × ${latencyMs} ms`,
        s.items,
        round(r.addMs),
        round(r.acceptedToFinishedMs / 1000, 2),
        round(r.jobsPerSec),
        vsAlways(r.jobsPerSec, latencyMs),
        vsIdeal(r.jobsPerSec, latencyMs),
        round(r.acceptedToFinishedMs / 1000, 2),
        '',
        round(servingCpu(r.cpuMsPerJob), 3),
        'every job completed',
      ]);
    }
  }

  const [at0, at50] = [switchyard[0], switchyard[50]];
  const ratioToBullmq = at0.itemsPerSec / bullmq.always[0].jobsPerSec;
  const ratioToIdeal = at50.itemsPerSec / idealItemsPerSec(50);
  const eventsPerItem = (f: BatchFigures) => f.history.events / f.items;
  const worstEvents = Math.max(eventsPerItem(at0), eventsPerItem(at50));
  const decided = (met: boolean) => (quick ? null : met);
  const metrics: Record<string, number> = {
    ratioToBullmqAlways0: ratioToBullmq,
    ratioToIdeal50: ratioToIdeal,
    uploadMs: at0.uploadMs,
  };
  for (const latencyMs of LATENCIES_MS) {
    const f = switchyard[latencyMs];
    Object.assign(metrics, {
      [`switchyardItemsPerSec${latencyMs}`]: f.itemsPerSec,
      [`switchyardAcceptedToFinishedS${latencyMs}`]: f.acceptedToFinishedMs / 1000,
      [`switchyardEventsPerItem${latencyMs}`]: eventsPerItem(f),
      [`switchyardCpuMsPerItem${latencyMs}`]: servingCpu(f.cpuMsPerItem),
      [`bullmqAlwaysItemsPerSec${latencyMs}`]: bullmq.always[latencyMs].jobsPerSec,
      [`bullmqEverysecItemsPerSec${latencyMs}`]: bullmq.everysec[latencyMs].jobsPerSec,
      [`bullmqAlwaysCpuMsPerItem${latencyMs}`]: servingCpu(bullmq.always[latencyMs].cpuMsPerJob),
    });
  }
  const perProcess = (cpu: Record<string, number>) =>
    Object.entries(cpu)
      .map(([name, ms]) => `${name} ${round(ms, 3)}`)
      .join(', ');

  return {
    settings: {
      items: `${s.items} per batch or addBulk, after an unmeasured warm-up of ${s.warmupItems} on the same side`,
      line: 'Switchyard\'s job shape, {"custom_id": "item-N", "task": "sentiment", "input": {"text": "A benchmark job."}}; BullMQ jobs carry the same request',
      pools: `synthetic, ${SLOTS} slots, latency ${LATENCIES_MS.join(' and ')} ms, no jitter; one inference worker process (BullMQ: one worker process, concurrency ${SLOTS}, the same synthetic provider code)`,
      server:
        'temporal server start-dev with a file-backed SQLite (WAL, synchronous=FULL), fresh for each Switchyard row, as `switchyard up` runs it',
      switchyard:
        '1 workflow worker, 1 inference worker, 1 API process (no API keys, LOG_LEVEL=warn); POST /v1/batches?pool=synthetic&completionWindow=24h, Content-Type application/x-ndjson',
      batches: batchSettings,
      redis: `its own redis-server per row: appendonly yes, appendfsync ${APPENDFSYNC.join(' or ')}, maxmemory-policy noeviction, no RDB snapshots`,
      bullmq: BULLMQ_SETTINGS,
    },
    columns: [
      'row',
      'items',
      'upload + validation ms',
      'accepted → last item s',
      'items/s',
      '× BullMQ always',
      "× slots' ideal",
      'accepted → finished s',
      'history events/item',
      'CPU ms/item',
      'output',
    ],
    rows,
    metrics,
    targets: [
      {
        name: 'items/s at 0 ms',
        target: '≥ 1.0 × BullMQ addBulk (appendfsync always)',
        measured: `${round(ratioToBullmq, 2)} × (${round(at0.itemsPerSec)} vs ${round(bullmq.always[0].jobsPerSec)} items/s)`,
        met: decided(ratioToBullmq >= 1),
      },
      {
        name: `items/s at ${SLOTS} slots × 50 ms`,
        target: `≥ 0.9 × the slots' ideal (${idealItemsPerSec(50)} items/s)`,
        measured: `${round(ratioToIdeal, 2)} × (${round(at50.itemsPerSec)} items/s)`,
        met: decided(ratioToIdeal >= 0.9),
      },
      {
        name: 'history events per item, over all runs',
        target: '≤ 0.5',
        measured: `${round(eventsPerItem(at0), 3)} at 0 ms, ${round(eventsPerItem(at50), 3)} at 50 ms`,
        met: decided(worstEvents <= 0.5),
      },
      {
        name: `accepted → finished, the whole batch of ${s.items}`,
        target: 'reported',
        measured: `${round(at0.acceptedToFinishedMs / 1000, 2)} s at 0 ms, ${round(at50.acceptedToFinishedMs / 1000, 2)} s at ${SLOTS} × 50 ms`,
        met: decided(Number.isFinite(at0.acceptedToFinishedMs) && Number.isFinite(at50.acceptedToFinishedMs)),
      },
    ],
    notes: [
      "Switchyard: accepted is the POST's 202 (the file streamed into the blob store, validated whole, split into groups, the workflow started: \"upload + validation\"); the last item is the batch's finalizingAt (every group done, as its workflow recorded it); finished is its completedAt (after finalization). The batch is polled with GET /v1/batches/:id twice a second; the times are the batch's own, not the poll's.",
      'BullMQ: accepted is addBulk resolved ("upload + validation" is its duration); the last item is the producer hearing the last completed event (QueueEvents), which is also when the whole batch has finished.',
      "Items/s is items over accepted → last item. × slots' ideal: over slots / latency (8 / 0.05 s = 160 items/s).",
      "History events per item: the batch workflow's events summed over all its runs (continue-as-new included), from visibility, over the items.",
      ...LATENCIES_MS.map(
        (ms) =>
          `Switchyard, ${SLOTS} slots × ${ms} ms — CPU ms per item by process (POST to completed seen): ${perProcess(switchyard[ms].cpuMsPerItem)}.`,
      ),
      ...APPENDFSYNC.flatMap((a) =>
        LATENCIES_MS.map(
          (ms) =>
            `BullMQ, appendfsync ${a}, ${SLOTS} slots × ${ms} ms — CPU ms per item by process: ${perProcess(bullmq[a][ms].cpuMsPerJob)}; redis-server wrote ${round(bullmq[a][ms].bytesWrittenPerJob)} bytes per item.`,
        ),
      ),
      "CPU ms/item counts the serving processes (Temporal server, workers, API; Redis and BullMQ's worker), not the bench process that sends and polls. 'other' is CPU of processes outside the run: large values mean the numbers are skewed.",
    ],
  };
}
