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
