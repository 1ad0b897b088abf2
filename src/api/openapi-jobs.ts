/** The job operations of the OpenAPI document (/v1/jobs, /v1/failures), from the zod schemas that validate them. */
import { COUNTED_FAILURE_TYPES } from '../clients/jobs/list';
import { bulkRetryResultSchema, jobResourceSchema, jobRunSchema } from '../jobs/resource';
import type { buildSubmitSchema } from '../jobs/spec';
import {
  bodyProblems,
  common,
  idempotencyKeyParam,
  json,
  jsonBody,
  jsonSchema,
  noContent,
  optionalBody,
  problem,
  queryParamsOf,
  ref,
  security,
  type Json,
} from './openapi-parts';
import { buildFailuresQuerySchema } from './routes/failures';
import { reviewBodySchema } from './routes/job-data';
import { buildBulkRetrySchema, retryBodySchema } from './routes/job-runs';
import { buildListQuerySchema, IDEMPOTENCY_KEY } from './routes/jobs';

const jobIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^job-[0-9A-Z]{26}$' } };
const job = (description: string) => json(description, ref('Job'));
const noSuchJob = problem('No such job for this tenant (or it was deleted)');
const quotaExceeded = problem('The tenant has as many open jobs as its quota allows (Retry-After is set); nothing was started');

function failureCountsSchema(): Json {
  const counts = Object.fromEntries([...COUNTED_FAILURE_TYPES, 'other'].map((t) => [t, { type: 'integer' }]));
  return {
    type: 'object',
    required: ['tenant', 'pool', 'since', 'total', 'byType'],
    properties: {
      tenant: { type: 'string' },
      pool: { type: ['string', 'null'] },
      since: { type: ['string', 'null'] },
      total: { type: 'integer' },
      byType: { type: 'object', properties: counts, required: Object.keys(counts), description: 'Types not listed count as other' },
    },
  };
}

export function jobsOpenApi(submitSchema: ReturnType<typeof buildSubmitSchema>, pools: readonly string[]): { schemas: Json; paths: Json } {
  const schemas = {
    JobRequest: jsonSchema(submitSchema, 'input'),
    Job: jsonSchema(jobResourceSchema, 'output'),
    JobPage: {
      type: 'object',
      required: ['items', 'nextCursor'],
      properties: {
        items: { type: 'array', items: ref('Job') },
        nextCursor: {
          type: ['string', 'null'],
          description: 'Pass as cursor, with the same filters, for the next page; null on the last page',
        },
      },
    },
    JobRun: jsonSchema(jobRunSchema, 'output'),
    JobRunList: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: ref('JobRun'), maxItems: 100 } } },
    ReviewRequest: jsonSchema(reviewBodySchema, 'input'),
    RetryRequest: jsonSchema(retryBodySchema, 'input'),
    BulkRetryRequest: jsonSchema(buildBulkRetrySchema(pools), 'input'),
    BulkRetryResult: jsonSchema(bulkRetryResultSchema, 'output'),
    FailureCounts: failureCountsSchema(),
  };
  const paths = {
    '/v1/jobs': {
      post: {
        operationId: 'submitJob',
        summary: 'Submit a job',
        security,
        parameters: [idempotencyKeyParam(IDEMPOTENCY_KEY)],
        requestBody: jsonBody('JobRequest'),
        responses: {
          '202': job('Accepted: the job was started'),
          '200': job('A repeat of an earlier request with the same Idempotency-Key'),
          ...bodyProblems,
          '400': problem(
            'Malformed JSON, unknown fields or invalid values; a document this tenant has not uploaded (unknown-document); a URL that may not be fetched or called (url-refused); a webhook while no signing secret is configured (webhook-not-configured)',
          ),
          '409': problem('The Idempotency-Key was used with a different body'),
          '429': quotaExceeded,
          ...common,
        },
      },
      get: {
        operationId: 'listJobs',
        summary: "List the caller's jobs, newest first",
        security,
        parameters: queryParamsOf(buildListQuerySchema(pools)),
        responses: { '200': json('A page of jobs', ref('JobPage')), '400': problem('Invalid filter or cursor'), ...common },
      },
    },
    '/v1/jobs/{id}': {
      get: {
        operationId: 'getJob',
        summary: 'Read a job: status, attempts, last failure, progress, result',
        security,
        parameters: [jobIdParam],
        responses: { '200': job('The job'), '404': noSuchJob, ...common },
      },
      delete: {
        operationId: 'deleteJob',
        summary: 'Delete a job that has ended: its data (results) and its workflow history, every run',
        security,
        parameters: [jobIdParam],
        responses: {
          '204': noContent('Deleted: from now on the job answers 404 everywhere (Temporal removes its history in the background)'),
          '400': problem('Unknown query parameters'),
          '404': noSuchJob,
          '409': problem('The job has not ended; cancel it first'),
          ...common,
        },
      },
    },
    '/v1/jobs/{id}/result': {
      get: {
        operationId: 'getJobResult',
        summary: "A job's result: a document job's full result JSON (streamed), an inference job's result object",
        security,
        parameters: [jobIdParam],
        responses: {
          '200': json('The result', {}),
          '400': problem('Unknown query parameters'),
          '404': noSuchJob,
          '409': problem('The job has no result (yet)'),
          ...common,
        },
      },
    },
    '/v1/jobs/{id}/review': {
      post: {
        operationId: 'reviewJob',
        summary: 'Approve or reject the result of a document job waiting for its review',
        security,
        parameters: [jobIdParam],
        requestBody: jsonBody('ReviewRequest'),
        responses: {
          '200': job('The decision was taken; the job as it is now'),
          ...bodyProblems,
          '404': noSuchJob,
          '409': problem('No review is open: not a document job, not waiting for a review, or already decided'),
          ...common,
        },
      },
    },
    '/v1/jobs/{id}/cancel': {
      post: {
        operationId: 'cancelJob',
        summary: 'Cancel a job; the running inference sees it at its next heartbeat',
        security,
        parameters: [jobIdParam],
        responses: { '202': job('Cancellation requested'), '404': noSuchJob, '409': problem('The job has already ended'), ...common },
      },
    },
    '/v1/jobs/{id}/retry': {
      post: {
        operationId: 'retryJob',
        summary: 'Retry a failed, timed-out or cancelled job: a new run of the same job, same input, fresh deadline',
        security,
        parameters: [jobIdParam],
        requestBody: optionalBody('RetryRequest'),
        responses: {
          '202': job('The new run was started'),
          ...bodyProblems,
          '404': noSuchJob,
          '409': problem('The job is queued, running or succeeded'),
          '429': quotaExceeded,
          ...common,
        },
      },
    },
    '/v1/jobs/retry': {
      post: {
        operationId: 'retryJobs',
        summary: 'Retry the jobs a filter selects, one page at a time',
        security,
        requestBody: jsonBody('BulkRetryRequest'),
        responses: {
          '200': json('Which jobs were retried and which were skipped, and why', ref('BulkRetryResult')),
          ...bodyProblems,
          '400': problem('Malformed JSON, unknown fields, invalid values or a cursor this API did not issue for this filter'),
          ...common,
        },
      },
    },
    '/v1/jobs/{id}/runs': {
      get: {
        operationId: 'listJobRuns',
        summary: "A job's runs, newest first, linked to the runs they retry and are retried by",
        security,
        parameters: [jobIdParam],
        responses: {
          '200': json('Up to the 100 most recent runs', ref('JobRunList')),
          '400': problem('Unknown query parameters'),
          '404': noSuchJob,
          ...common,
        },
      },
    },
    '/v1/failures': {
      get: {
        operationId: 'countFailures',
        summary: "The caller's failed runs counted by failure type",
        security,
        parameters: queryParamsOf(buildFailuresQuerySchema(pools)),
        responses: { '200': json('Counts by failure type', ref('FailureCounts')), '400': problem('Invalid filter'), ...common },
      },
    },
  };
  return { schemas, paths };
}
