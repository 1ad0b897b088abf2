/**
 * `npm start` as it comes, encrypted, and the Temporal UI an operator opens: `switchyard up` with no keys
 * configured makes a key of its own in the data directory (mode 0600), its dev server stores the job
 * encrypted, and its Web UI — started pointing at the API's codec server — shows the job's input decoded,
 * in headless Chromium (Debian's, driven by playwright-core), through the codec server it calls from the
 * UI's origin.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { pickFreePort } from '../../src/local/dev-server';
import { LOCAL_KEY_FILE } from '../../src/local/encryption-key';
import { spawnSwitchyard, Stack, type ProcessHandle } from '../../testkit/stack';
import { eventually, WAIT_LIMIT_MS } from '../../testkit/wait';

const CHROMIUM = '/usr/bin/chromium';
const WORD = `osprey${randomBytes(4).toString('hex')}`;

let stack: Stack;
let up: ProcessHandle | undefined;
let browser: Browser | undefined;
const ports = { grpc: 0, ui: 0, api: 0 };
const apiUrl = () => `http://127.0.0.1:${ports.api}`;

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium is not installed at ${CHROMIUM}: apt-get install chromium`);
  assert.ok(process.env.TEMPORAL_CLI_PATH, 'TEMPORAL_CLI_PATH is not set: run the tests with `npm test`');
  const picked = new Set<number>();
  while (picked.size < 3) picked.add(await pickFreePort());
  [ports.grpc, ports.ui, ports.api] = [...picked] as [number, number, number];
  // The stack gives a temp data dir and a task-queue prefix; `up` runs everything else, as a user starts it:
  // its own dev server and UI, no API keys (loopback), no encryption keys.
  stack = new Stack();
  const env = {
    ...stack.env,
    TEMPORAL_ADDRESS: '',
    TEMPORAL_UI_URL: '',
    SWITCHYARD_API_KEYS: '',
    SWITCHYARD_ENCRYPTION_KEYS: '',
    SWITCHYARD_DEV_SERVER_PORT: String(ports.grpc),
    SWITCHYARD_DEV_UI_PORT: String(ports.ui),
    API_PORT: String(ports.api),
  };
  up = spawnSwitchyard(['up'], env, { detached: true });
  await up.waitForLine(/^Ctrl-C stops everything/, 3 * WAIT_LIMIT_MS);
});
after(async () => {
  await browser?.close();
  if (up && up.exitStatus === undefined) {
    up.kill('SIGINT');
    await up.exited;
  }
  await stack?.stop();
});

const keyFile = () => path.join(stack.env.SWITCHYARD_DATA_DIR!, LOCAL_KEY_FILE);

test('with no keys configured, `up` makes a key of its own in the data directory, readable by its owner only', () => {
  assert.ok(
    up!.lines.some((l) => l.startsWith('Made an encryption key in') && l.includes(keyFile())),
    up!.lines.join('\n'),
  );
  assert.equal(fs.statSync(keyFile()).mode & 0o777, 0o600);
  assert.match(fs.readFileSync(keyFile(), 'utf8'), /^local:[A-Za-z0-9+/]{43}=\n$/);
});

test("the Temporal UI shows the job's input decoded by the codec server, while Temporal stores it encrypted", async () => {
  const submitted = await fetch(`${apiUrl()}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'inference', task: 'sentiment', input: { text: `The ${WORD} migration went well.` } }),
  }).then((r) => r.json() as Promise<{ id: string }>);
  const job = await eventually('the job to succeed', async () => {
    const read = (await (await fetch(`${apiUrl()}/v1/jobs/${submitted.id}`)).json()) as { status: string; links: { temporalUi: string } };
    return read.status === 'succeeded' ? read : undefined;
  });

  const shown = await promisify(execFile)(process.env.TEMPORAL_CLI_PATH!, [
    'workflow',
    'show',
    '-w',
    `default/${submitted.id}`,
    '--output',
    'json',
    '--address',
    `127.0.0.1:${ports.grpc}`,
  ]);
  assert.ok(!shown.stdout.includes(WORD), 'the raw history does not hold the text');
  assert.match(shown.stdout, /YmluYXJ5L2VuY3J5cHRlZA==|binary\/encrypted/, 'its payloads are encrypted');

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT_LIMIT_MS);
  const decodes: { status: number; allowOrigin: string | undefined }[] = [];
  page.on('response', (response) => {
    const request = response.request();
    if (request.method() === 'POST' && request.url().startsWith(`${apiUrl()}/codec/decode`))
      decodes.push({ status: response.status(), allowOrigin: response.headers()['access-control-allow-origin'] });
  });
  assert.equal(new URL(job.links.temporalUi).port, String(ports.ui), job.links.temporalUi);
  await page.goto(job.links.temporalUi);
  await page.getByText(WORD).first().waitFor();
  assert.ok(decodes.length > 0, 'the UI called the codec server');
  assert.ok(
    decodes.every((d) => d.status === 200 && d.allowOrigin === `http://127.0.0.1:${ports.ui}`),
    JSON.stringify(decodes),
  );
});
