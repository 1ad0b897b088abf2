/**
 * /docs as a person uses it, in headless Chromium (Debian's, driven by playwright-core): the operations
 * and schemas render from /openapi.json under the page's Content-Security-Policy, Authorize takes a
 * tenant's API key, and "Try it out" on POST /v1/jobs submits a job to this same API and shows its 202.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Stack } from '../../testkit/stack';
import { WAIT_LIMIT_MS } from '../../testkit/wait';

const CHROMIUM = '/usr/bin/chromium';
const TENANT = { tenant: 'docs-ui', key: 'docs-ui-key-0123456789abcdef' };

let stack: Stack;
let browser: Browser;
let page: Page;
/** The OpenAPI document the page renders. */
let doc: any;
/** What the page's console and script errors said: a CSP refusal shows up here. */
const problems: string[] = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is not installed at ${CHROMIUM}: apt-get install chromium`);
  stack = await new Stack({ env: { SWITCHYARD_API_KEYS: `${TENANT.tenant}:${TENANT.key}` } }).start();
  // --no-sandbox: Chromium's sandbox refuses to run as root, which CI is.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage();
  // Every wait for the page is for an element or an answer: the limit is only a safety net.
  page.setDefaultTimeout(WAIT_LIMIT_MS);
  page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
  page.on('pageerror', (e) => void problems.push(e.message));
  doc = (await stack.call('GET', '/openapi.json', { as: null })).body;
  await page.goto(`${stack.apiUrl}/docs`);
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

const operation = (operationId: string) => page.locator(`#operations-default-${operationId}`);

test('the operations render, with their methods and paths', async () => {
  await operation('submitJob').waitFor();
  for (const [id, method, path] of [
    ['submitJob', 'POST', '/v1/jobs'],
    ['getJob', 'GET', '/v1/jobs/{id}'],
    ['deleteJob', 'DELETE', '/v1/jobs/{id}'],
    ['createConversation', 'POST', '/v1/conversations'],
  ]) {
    const summary = operation(id!).locator('.opblock-summary');
    assert.equal((await summary.locator('.opblock-summary-method').textContent())?.trim(), method);
    assert.equal(await summary.locator('.opblock-summary-path').getAttribute('data-path'), path);
  }
});

test('every operation of the document renders', async () => {
  for (const methods of Object.values<Record<string, { operationId: string }>>(doc.paths)) {
    for (const { operationId } of Object.values(methods)) assert.equal(await operation(operationId).count(), 1, operationId);
  }
});

test('every schema of the document is listed', async () => {
  const names = Object.keys(doc.components.schemas);
  // OpenAPI 3.1 schemas are drawn as JSON Schema 2020-12 articles, one at the top level per schema.
  const titles = page.locator('section.models article[data-json-schema-level="0"] > .json-schema-2020-12-head .json-schema-2020-12__title');
  await titles.first().waitFor();
  const listed = (await titles.allTextContents()).map((t) => t.trim());
  assert.deepEqual(new Set(listed), new Set(names));
});

test('Authorize with a tenant key, then "Try it out" on POST /v1/jobs answers 202 from this API', async () => {
  await page.locator('.auth-wrapper button.authorize').click();
  const dialog = page.locator('.dialog-ux .modal-ux');
  await dialog.locator('input[type=text], input[type=password]').first().fill(TENANT.key);
  await dialog.locator('button.authorize').click();
  await dialog.locator('button.btn-done').click();

  const submit = operation('submitJob');
  await submit.locator('.opblock-summary').click();
  await submit.locator('button.try-out__btn').click();
  const job = { type: 'inference', task: 'sentiment', input: { text: 'The docs page works.' } };
  await submit.locator('textarea.body-param__text').fill(JSON.stringify(job));
  await submit.locator('button.execute').click();

  const status = submit.locator('.live-responses-table tbody .response-col_status').first();
  await status.waitFor();
  assert.equal((await status.textContent())?.trim(), '202');
  const requestUrl = (await submit.locator('.request-url pre').textContent())?.trim();
  assert.equal(requestUrl, `${stack.apiUrl}/v1/jobs`, 'the call went to the origin that served the page');
  const body = JSON.parse(
    (await submit.locator('.live-responses-table tbody .response-col_description pre').first().textContent()) ?? '{}',
  );
  assert.match(body.id, /^job-[0-9A-Z]{26}$/);
  assert.equal(
    (await stack.call('GET', `/v1/jobs/${body.id}`, { as: null, headers: { authorization: `Bearer ${TENANT.key}` } })).status,
    200,
  );
});

test('nothing was refused by the Content-Security-Policy, and no script failed', () => {
  assert.deepEqual(problems, []);
});
