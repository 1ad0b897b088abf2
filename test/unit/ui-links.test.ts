import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config';
import { jobLinks, jobResourceSchema } from '../../src/jobs/resource';

const links = (env: Record<string, string>) => {
  const { uiUrl, namespace } = loadConfig(env).temporal;
  return jobLinks({ uiUrl, namespace }, { id: 'job-1', type: 'inference' }, 'acme/job-1', 'run-1');
};

test('the embedded server links to its own UI', () => {
  assert.equal(links({}).temporalUi, 'http://localhost:8233/namespaces/default/workflows/acme%2Fjob-1/run-1/history');
});

test('TEMPORAL_UI_URL is the base of the links', () => {
  const env = { TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_UI_URL: 'https://ui.internal/' };
  assert.equal(links(env).temporalUi, 'https://ui.internal/namespaces/default/workflows/acme%2Fjob-1/run-1/history');
});

test('an external server without TEMPORAL_UI_URL gives no UI link rather than a guess', () => {
  assert.equal(loadConfig({ TEMPORAL_ADDRESS: 'temporal.internal:7233' }).temporal.uiUrl, null);
  const l = links({ TEMPORAL_ADDRESS: 'temporal.internal:7233' });
  assert.equal('temporalUi' in l && l.temporalUi !== undefined, false);
  // The resource schema (and so the OpenAPI document) allows it to be absent.
  assert.equal(jobResourceSchema.shape.links.safeParse(JSON.parse(JSON.stringify(l))).success, true);
});
