/**
 * The peer-bullmq scenario's settings and its sides: the vocabulary the scenario, its evidence and its
 * report share (a leaf, so they import it rather than each other).
 */
import type { Appendfsync } from '../lib/redis';

/** BullMQ twice — its Redis fsyncing the AOF once a second, and before every reply — and Switchyard. */
export const SIDES = ['bullmq', 'bullmqAlways', 'switchyard'] as const;
export type Side = (typeof SIDES)[number];
export type BullmqPeer = Exclude<Side, 'switchyard'>;
/**
 * `bullmq` runs as BullMQ's production guide recommends (the metrics of earlier runs have its name);
 * `bullmqAlways` is at the durability of Switchyard's default embedded server: an acknowledged job
 * survives a crash of the machine.
 */
export const APPENDFSYNC: Record<BullmqPeer, Appendfsync> = { bullmq: 'everysec', bullmqAlways: 'always' };

/**
 * Each series runs its inference times with `workers` processes × `slots` on both sides. The first is the
 * comparison the issue asks for; the second keeps the slots' demand (slots / inference time) under
 * the Temporal dev server's ceiling, so it shows what the first cannot: the workers' own throughput.
 */
export interface Series {
  slots: number;
  latencies: number[];
  /** Also measure end-to-end latency at a fixed rate (open loop). */
  latencyPhase: boolean;
}
export const SETTINGS = {
  full: {
    workers: 2,
    rounds: 2,
    /** Jobs per round and side: about `roundSeconds` of the slots' ideal rate, at most `jobsPerRound`. */
    jobsPerRound: 400,
    roundSeconds: 10,
    /**
     * Jobs in flight in the throughput rounds: at least twice the slots, and enough that the slots never
     * wait for work even when a job spends far longer in orchestration than in inference.
     */
    minInFlight: 100,
    warmupJobs: 50,
    latencyJobs: 300,
    /** The 0-ms evidence: jobs at the latency phase's rate with the server's persistence counted, then under strace. */
    evidenceJobs: 50,
    straceJobs: 200,
    series: [
      { slots: 20, latencies: [0, 50, 200], latencyPhase: true },
      { slots: 1, latencies: [50, 200], latencyPhase: false },
    ] as Series[],
  },
  quick: {
    workers: 2,
    rounds: 1,
    jobsPerRound: 24,
    roundSeconds: 1,
    minInFlight: 16,
    warmupJobs: 4,
    latencyJobs: 8,
    evidenceJobs: 8,
    straceJobs: 0,
    series: [{ slots: 4, latencies: [0, 50, 200], latencyPhase: true }] as Series[],
  },
};
export type PeerSettings = (typeof SETTINGS)['full'];
