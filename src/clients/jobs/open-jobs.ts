/**
 * Tenant quotas: how many open (queued + running) jobs a tenant has, counted in Temporal's visibility; a
 * running batch is one.
 *
 * Visibility lags a workflow start by up to a second or so, so a burst of submissions would all see
 * the same count and overshoot. Two things close that gap within one API process: a tenant's admissions
 * are decided one at a time, and the count is visibility's executions started before a cutoff
 * (`now - VISIBILITY_LAG_MS`) plus the starts this process has in flight or made since then (a small
 * ledger of its own). Jobs other API processes started within the lag are not seen: with N replicas a
 * tenant can overshoot by what the others started in that window (docs/flow-control.md, "Quotas").
 */
import type { Client } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../jobs/search-attributes';
import { QuotaExceededError } from './errors';
import { OPEN_JOBS_COUNTED } from './visibility';

/** How far visibility may trail a workflow start; jobs started more recently are counted from the ledger. */
export const VISIBILITY_LAG_MS = 2000;
/** How long one visibility count is reused: bounds count calls to a few per second per tenant, whatever the load. */
const COUNT_REUSE_MS = 250;

/** One start by this process: `at` is the local time it returned, Infinity while it is in flight. */
interface Start {
  at: number;
}

interface TenantState {
  /** The tail of this tenant's admission decisions: each waits for the one before it. */
  decisions: Promise<unknown>;
  /** Running executions that started before `cutoff`, as visibility counted them at `countedAt`. */
  counted?: { open: number; cutoff: number; countedAt: number };
  /** This process's starts at or after the count's cutoff (older ones are in the count). */
  recentStarts: Set<Start>;
}

export class OpenJobs {
  private readonly tenants = new Map<string, TenantState>();

  constructor(
    private readonly temporal: Client,
    /** The tenant's quota of open jobs; 0 for none. */
    private readonly maxOpenJobsOf: (tenant: string) => number,
  ) {}

  /**
   * Runs `start` if the tenant has fewer open jobs than its quota, else throws QuotaExceededError.
   * `opened(result)` says whether `start` opened a new job (a repeat of an idempotency key does not).
   */
  async admit<T>(tenant: string, start: () => Promise<T>, opened: (result: T) => boolean = () => true): Promise<T> {
    const maxOpenJobs = this.maxOpenJobsOf(tenant);
    if (maxOpenJobs === 0) return start();
    const state = this.stateOf(tenant);
    const mine: Start = { at: Infinity };
    const decision = state.decisions.then(async () => {
      const open = await this.openJobs(tenant, state);
      if (open >= maxOpenJobs) throw new QuotaExceededError(tenant, open, maxOpenJobs);
      state.recentStarts.add(mine);
    });
    state.decisions = decision.catch(() => undefined);
    await decision;
    // Stamped once the start returns, which is at or after the server's StartTime: when a later count's
    // cutoff passes it, that count includes the job. A start that failed may still have reached the server.
    const result = await start().catch((err: unknown) => {
      mine.at = Date.now();
      throw err;
    });
    if (opened(result)) mine.at = Date.now();
    else state.recentStarts.delete(mine);
    return result;
  }

  private stateOf(tenant: string): TenantState {
    let state = this.tenants.get(tenant);
    if (!state) this.tenants.set(tenant, (state = { decisions: Promise.resolve(), recentStarts: new Set() }));
    return state;
  }

  private async openJobs(tenant: string, state: TenantState): Promise<number> {
    const now = Date.now();
    if (!state.counted || now - state.counted.countedAt > COUNT_REUSE_MS) {
      const cutoff = now - VISIBILITY_LAG_MS;
      const query =
        `${SEARCH_ATTRIBUTES.tenant.name} = '${tenant}' AND ${OPEN_JOBS_COUNTED} AND ExecutionStatus = 'Running' ` +
        `AND StartTime < '${new Date(cutoff).toISOString()}'`;
      const { count } = await this.temporal.workflow.count(query);
      state.counted = { open: count, cutoff, countedAt: now };
      for (const s of state.recentStarts) if (s.at < cutoff) state.recentStarts.delete(s);
    }
    return state.counted.open + state.recentStarts.size;
  }
}
