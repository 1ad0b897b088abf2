/**
 * Switchyard's custom search attributes, defined once. Pure (only @temporalio/common), so workflows can
 * set them too; `src/temporal/search-attributes.ts` registers them on servers.
 */
import { defineSearchAttributeKey } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  tenant: defineSearchAttributeKey('JobTenant', 'KEYWORD'),
  type: defineSearchAttributeKey('JobType', 'KEYWORD'),
  priority: defineSearchAttributeKey('JobPriority', 'INT'),
  pool: defineSearchAttributeKey('JobPool', 'KEYWORD'),
  /** Set by the workflow when a job fails: the failure type, so dead letters can be listed and counted by it. */
  errorType: defineSearchAttributeKey('JobErrorType', 'KEYWORD'),
} as const;

/**
 * Where a workflow's work stands, set at its start: the priority and the tenant's fairness its activities
 * inherit (urgent work is dispatched first; tenants share a pool by weight), and the search attributes that list it.
 */
export function placement(w: { tenant: string; type: string; priority: number; pool: string; tenantWeight: number }) {
  return {
    priority: { priorityKey: w.priority, fairnessKey: w.tenant, fairnessWeight: w.tenantWeight },
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.tenant, value: w.tenant },
      { key: SEARCH_ATTRIBUTES.type, value: w.type },
      { key: SEARCH_ATTRIBUTES.priority, value: w.priority },
      { key: SEARCH_ATTRIBUTES.pool, value: w.pool },
    ],
  };
}
