/** One system under the engine-cost benchmark: it runs loads of jobs, and its jobs can be found in visibility. */
import type { Client } from '@temporalio/client';
import type { LoadResult } from './load';

/** A load of one-call jobs whose inference waits `activityMs`: closed loop with `inFlight` outstanding, or open loop at `ratePerSec`. */
export interface EngineLoad {
  jobs: number;
  activityMs: number;
  inFlight?: number;
  ratePerSec?: number;
}

export interface EngineSide {
  /** The Temporal server's process: bytes written are counted on it. */
  serverPid: number;
  /** A client of the side's server, for visibility. */
  client: Client;
  /** The visibility query that finds this side's jobs. */
  query: string;
  processes(): { name: string; pid: number }[];
  /** Sends the load; resolves with each job's workflow id and the load's timings once all are accepted. */
  run(load: EngineLoad): Promise<{ ids: string[]; load: LoadResult }>;
  stop(): Promise<void>;
}
