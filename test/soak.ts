/**
 * `npm run soak -- --minutes N [--rate R] [--faults F]`: the whole service as `npm start` runs it (`switchyard up`,
 * on ports and a data directory of its own), under R submissions a second round the kinds of test/soak/workload.ts
 * (each one item; a batch, every few rounds, is one submission of many) for N minutes, while F processes it runs —
 * workers, the API, the Temporal dev server — are SIGKILLed at random moments (test/soak/faults.ts). Then it waits
 * for every accepted item to end, prints what became of them, and exits non-zero if any was lost or done twice.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeOpenAI } from '../testkit/fake-openai';
import { freePorts, interrupt, killGroup, launchUp, upPortsEnv, type Up } from '../testkit/up';
import { inflict, planFaults } from './soak/faults';
import { countOutcomes, table } from './soak/report';
import {
  batches,
  conversationMessages,
  documents,
  localInference,
  read,
  remoteInference,
  type Entry,
  type Kind,
  type Outcome,
  type SoakApi,
} from './soak/workload';

/** Submissions still being retried (the API or Temporal is down) beyond which the soak waits before sending more. */
const MAX_IN_FLIGHT = 32;
/** After the last submission, how long accepted items may take to end before those still open count as lost. */
const DRAIN_MS = 10 * 60_000;
const READ_PARALLEL = 16;
/** The provider's faults: a share of calls throttled (429 Retry-After: 1), a share failing (500). */
const PROVIDER_FAULTS = { throttled: 0.1, failing: 0.05, retryAfter: '1' };

const say = (line: string) => console.log(`soak ${new Date().toISOString().slice(11, 19)}  ${line}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function options() {
  const { values } = parseArgs({
    options: { minutes: { type: 'string', default: '2' }, rate: { type: 'string', default: '4' }, faults: { type: 'string' } },
  });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  const faults = values.faults === undefined ? Math.max(5, Math.round(minutes * 2.5)) : Number(values.faults);
  if (!(minutes > 0) || !(rate > 0) || !Number.isInteger(faults) || faults < 0) {
    throw new Error('usage: npm run soak -- --minutes N [--rate submissions-per-second] [--faults count]');
  }
  return { durationMs: minutes * 60_000, rate, faults };
}

/**
 * Submits round the kinds at `rate` submissions a second until `until`, a kind with `every` only every so many
 * rounds; every accepted item lands in `entries`.
 */
async function submitAll(api: SoakApi, kinds: Kind[], rate: number, until: number, entries: Entry[], refused: string[]): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const run = Date.now().toString(36);
  for (let n = 0; Date.now() < until; n++) {
    const kind = kinds[n % kinds.length]!;
    if (Math.floor(n / kinds.length) % (kind.every ?? 1) !== 0) continue;
    while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
    // Of one width, so that no tag is part of another (the provider's log is searched by tag).
    const submission = kind.submit(api, `soak-${run}-${String(n).padStart(7, '0')}`).then(
      (accepted) => void entries.push(...[accepted].flat()),
      (err: Error) => void refused.push(err.message),
    );
    inFlight.add(submission);
    void submission.finally(() => inFlight.delete(submission));
    await sleep(1000 / rate);
  }
  await Promise.all(inFlight);
}

/** Reads every item back until none is open or the drain time is over. */
async function drain(api: SoakApi, kinds: Kind[], entries: Entry[]): Promise<Map<Entry, Outcome>> {
  const outcomes = new Map<Entry, Outcome>();
  const byName = new Map(kinds.map((k) => [k.name, k]));
  for (const deadline = Date.now() + DRAIN_MS; Date.now() < deadline; await sleep(1000)) {
    const open = entries.filter((e) => [undefined, 'open', 'missing'].includes(outcomes.get(e)));
    if (open.length === 0) break;
    say(`waiting for ${open.length} of ${entries.length} items to end`);
    for (let i = 0; i < open.length; i += READ_PARALLEL) {
      await Promise.all(open.slice(i, i + READ_PARALLEL).map(async (e) => outcomes.set(e, await byName.get(e.kind)!.read(api, e))));
    }
  }
  return outcomes;
}

/** Every job the tenant has, as the API lists them: more than were accepted means one was started twice. */
async function listedJobs(api: SoakApi): Promise<number | undefined> {
  let count = 0;
  for (let cursor = ''; ;) {
    const page = await read(api, `/v1/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    if (!page || page.status !== 200) return undefined;
    count += (page.body.items as unknown[]).length;
    if (!page.body.nextCursor) return count;
    cursor = page.body.nextCursor as string;
  }
}

/** The listing once visibility (which trails the jobs' ends by a moment) shows at least `accepted`, or after 30 s. */
async function listedOnceSettled(api: SoakApi, accepted: number): Promise<number | undefined> {
  let listed: number | undefined;
  for (let tries = 0; tries < 30 && (listed === undefined || listed < accepted); tries++) {
    if (tries) await sleep(1000);
    listed = await listedJobs(api);
  }
  return listed;
}

async function main(): Promise<number> {
  const { durationMs, rate, faults: faultCount } = options();
  const provider = await startFakeOpenAI();
  provider.randomFaults(PROVIDER_FAULTS);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-soak-'));
  const key = `soak-${randomBytes(12).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...upPortsEnv(await freePorts()),
    SWITCHYARD_DATA_DIR: dataDir,
    SWITCHYARD_API_KEYS: `soak:${key}`,
    SWITCHYARD_POOLS: JSON.stringify({
      local: { provider: 'local', concurrency: 4 },
      remote: { provider: 'openai', concurrency: 8, baseUrl: provider.url, model: 'fake-model', requestTimeoutMs: 30_000 },
    }),
    SWITCHYARD_DEFAULT_REQUESTS_PER_SECOND: '0',
    // Any free port for the API's metrics, so a soak runs beside another service (or soak) on the default one.
    SWITCHYARD_API_METRICS_ADDRESS: '127.0.0.1:0',
    SWITCHYARD_HEARTBEAT_TIMEOUT_MS: '5000',
    SWITCHYARD_SHUTDOWN_GRACE_MS: '2000',
    LOG_LEVEL: 'info',
  };
  delete env.TEMPORAL_ADDRESS; // its own dev server, which it supervises
  let up: Up | undefined;
  let ok = false;
  try {
    say(`starting switchyard up (data in ${dataDir})`);
    up = await launchUp(env);
    const api: SoakApi = { url: up.banner.apiUrl, key };
    const kinds = [remoteInference(provider), localInference, documents, conversationMessages(), batches()];
    const started = Date.now();
    const plan = planFaults(faultCount, durationMs);
    say(`up in ${up.readyMs} ms; ${durationMs / 60_000} min at ${rate} submissions/s, ${plan.length} faults`);

    const entries: Entry[] = [];
    const refused: string[] = [];
    const current = up;
    const faulting = (async () => {
      for (const fault of plan) {
        await sleep(Math.max(0, started + fault.at - Date.now()));
        await inflict(current, fault, say);
      }
    })();
    await submitAll(api, kinds, rate, started + durationMs, entries, refused);
    await faulting;
    say(`${entries.length} items accepted; waiting for them to end`);
    const outcomes = await drain(api, kinds, entries);
    const rows = countOutcomes(
      entries,
      outcomes,
      kinds.map((k) => k.name),
    );
    // Conversation messages and batch items (`<conversation>/<message>`, `<batch>/<custom_id>`) are not jobs.
    const jobs = entries.filter((e) => !e.id.includes('/')).length;
    const listed = await listedOnceSettled(api, jobs);
    const total = rows.at(-1)!;
    const calls = provider.requests.filter((r) => r.path.startsWith('/v1/'));

    console.log(`\n${table(rows)}\n`);
    console.log(`faults: ${plan.map((f) => `${f.role} at ${(f.at / 1000).toFixed(0)} s (back in ${f.backMs ?? '?'} ms)`).join('; ')}`);
    console.log(
      `provider: ${calls.length} calls, ${calls.filter((r) => r.status === 429).length} answered 429, ${calls.filter((r) => r.status === 500).length} answered 500`,
    );
    console.log(`jobs listed by the API: ${listed ?? 'unreadable'} (accepted: ${jobs})`);
    for (const message of refused) console.log(`not accepted: ${message}`);
    ok = total.lost === 0 && total.twice === 0 && listed === jobs && refused.length === 0;
    if (!ok) fs.writeFileSync(path.join(dataDir, 'up.log'), `${up.process.lines.join('\n')}\n`);
    console.log(ok ? 'soak passed: nothing lost, nothing done twice' : `soak FAILED (what up printed and the server's log: ${dataDir})`);
  } finally {
    if (up) {
      if (up.process.exitStatus === undefined) await interrupt(up).catch(() => undefined);
      killGroup(up.process);
    }
    await provider.close();
    if (ok) fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error((err as Error)?.stack ?? err);
    process.exit(1);
  },
);
