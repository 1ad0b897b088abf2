/**
 * Where the 0-ms gap goes, measured apart from the timed rounds: at a light load, the Temporal server's
 * persistence calls per job (its own metrics) and the gaps between a job's history events; then, under
 * strace, the write and sync system calls each side's store makes per job.
 */
import type { Client } from '@temporalio/client';
import { historySteps, type HistoryStep } from '../lib/history-timing';
import { assertNoErrors, type LoadResult } from '../lib/load';
import { straceCounts, type SyscallCounts } from '../lib/syscalls';
import { findMetricsUrl, persistenceCounts, persistenceUsed } from '../lib/temporal-metrics';
import { SIDES, type Side } from './peer-bullmq-settings';

/** The server's metrics are scraped from counters it updates about once a second: let them settle. */
const SETTLE_MS = 2500;

export interface PersistenceCall {
  operation: string;
  perJob: number;
  /** Mean ms per call (includes waiting for the database connection). */
  meanMs: number;
}

export interface Evidence {
  /** A Switchyard job's history events with the median ms before each, at a light load. */
  steps: HistoryStep[];
  /** Persistence calls per job by operation at a light load, most frequent first; empty when the metrics were not found. */
  persistence: PersistenceCall[];
  /** Per side: write/sync system calls of its store over `jobs` 0-ms jobs (strace), when available. */
  syscalls: Partial<Record<Side, { jobs: number; counts: SyscallCounts }>>;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

export async function gapEvidence(c: {
  client: Client;
  /** Every Switchyard workflow id started so far, in order (the light-load phase appends to it). */
  workflowIds: string[];
  /** Runs Switchyard jobs at a light load. */
  light: () => Promise<LoadResult>;
  /** Per side, the pid of its store: redis-server, the Temporal dev server. */
  stores: Record<Side, number>;
  straceJobs: number;
  closed: (side: Side, count: number) => () => Promise<LoadResult>;
  log: (line: string) => void;
}): Promise<Evidence> {
  const url = await findMetricsUrl(c.stores.switchyard);
  if (!url) c.log("the Temporal server's metrics endpoint was not found: no persistence counts");
  await settle();
  const before = url && (await persistenceCounts(url));
  const first = c.workflowIds.length;
  const load = await c.light();
  assertNoErrors('0 ms, switchyard, light load for the evidence', load);
  await settle();
  const jobs = load.sentAt.length;
  const persistence =
    before && url
      ? persistenceUsed(before, await persistenceCounts(url)).map(([operation, d]) => ({
          operation,
          perJob: d.requests / jobs,
          meanMs: d.latencyMs / d.requests,
        }))
      : [];
  const steps = await historySteps(c.client, c.workflowIds.slice(first).slice(-20));

  const syscalls: Evidence['syscalls'] = {};
  for (const side of c.straceJobs > 0 ? SIDES : []) {
    c.log(`0 ms, ${side}: counting the store's write/sync system calls over ${c.straceJobs} jobs (strace; not timed)`);
    const counts = await straceCounts(c.stores[side], async () =>
      assertNoErrors(`${side} under strace`, await c.closed(side, c.straceJobs)()),
    );
    if (counts) syscalls[side] = { jobs: c.straceJobs, counts };
  }
  return { steps, persistence, syscalls };
}
