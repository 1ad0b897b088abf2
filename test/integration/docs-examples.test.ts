/**
 * The curl examples in README.md and docs/ run against a real stack, so an example that drifts from the
 * API fails here. A runnable block is fenced as ```sh example; the blocks of one page run in order in
 * one bash shell (later blocks use variables set by earlier ones) with $API, $API_METRICS (the API's metrics
 * address), $KEY and $OPERATOR_KEY set, and `curl` fails on any HTTP error unless the example asks for
 * the status itself (`-w`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Stack, TENANTS } from '../../testkit/stack';

const ROOT = path.resolve(__dirname, '../..');
const OPERATOR_KEY = 'operator-key-docs-0123456789';
const PAGES = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The shell's prelude: strict mode, and curl that fails on 4xx/5xx unless the example checks the status. */
const PRELUDE = `
curl() {
  case " $* " in
    *" -w "*|*" --write-out "*) command curl -sS "$@" ;;
    *) command curl -sS --fail-with-body "$@" ;;
  esac
}
`;

interface Block {
  info: string;
  body: string;
  line: number;
}

function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    while (++i < lines.length && !lines[i]!.startsWith('```')) body.push(lines[i]!);
    blocks.push({ info: open[1]!.trim(), body: body.join('\n'), line: start + 1 });
  }
  return blocks;
}

const examplesOf = (page: string) => fencedBlocks(readFileSync(path.join(ROOT, page), 'utf8')).filter((b) => b.info === 'sh example');

function runScript(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

let stack: Stack;

before(async () => {
  stack = await new Stack({ env: { SWITCHYARD_OPERATOR_KEYS: OPERATOR_KEY } }).start();
});
after(async () => {
  await stack?.stop();
});

test('every curl example against the API is marked to run, and there are some', () => {
  let marked = 0;
  for (const page of PAGES) {
    for (const block of fencedBlocks(readFileSync(path.join(ROOT, page), 'utf8'))) {
      if (block.info === 'sh example') marked++;
      else if (/^(sh|bash)\b/.test(block.info) && /\bcurl\b[^\n]*\$API/.test(block.body)) {
        assert.fail(`${page}:${block.line}: a curl example against $API is not fenced as \`\`\`sh example, so no test runs it`);
      }
    }
  }
  assert.ok(marked >= 5, `only ${marked} runnable examples in README.md and docs/`);
});

for (const page of PAGES) {
  const blocks = examplesOf(page);
  if (!blocks.length) continue;
  test(`${page}: its ${blocks.length} examples run against the API`, { timeout: 180_000 }, async () => {
    const script = [PRELUDE, ...blocks.map((b) => `# ${page}:${b.line}\n${b.body}`)].join('\n');
    const env = {
      ...process.env,
      API: stack.apiUrl,
      API_METRICS: stack.apiMetricsUrl.replace(/\/metrics$/, ''),
      KEY: TENANTS.acme.key,
      OPERATOR_KEY,
    };
    const { code, output } = await runScript(script, env);
    assert.equal(code, 0, `the examples of ${page} failed (exit ${code}):\n${output.slice(-4000)}`);
  });
}
