/**
 * Each workflow's contract names the function the bundle exports: a client that starts, queries or
 * updates a workflow by its contract reaches the code that the worker registered under that name.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BATCH_JOB_WORKFLOW } from '../../src/batches/contract';
import { CONVERSATION_WORKFLOW } from '../../src/conversations/contract';
import { DOCUMENT_JOB_WORKFLOW } from '../../src/documents/contract';
import { POOL_LIMITER_WORKFLOW } from '../../src/inference/limiter-contract';
import { INFERENCE_JOB_WORKFLOW } from '../../src/jobs/inference-contract';
import * as workflows from '../../workflows';

test('every contract names an exported workflow, and every exported workflow has a contract', () => {
  const named = [INFERENCE_JOB_WORKFLOW, DOCUMENT_JOB_WORKFLOW, CONVERSATION_WORKFLOW, POOL_LIMITER_WORKFLOW, BATCH_JOB_WORKFLOW].sort();
  assert.deepEqual(Object.keys(workflows).sort(), named);
  for (const name of named) assert.equal(typeof (workflows as Record<string, unknown>)[name], 'function', name);
});
