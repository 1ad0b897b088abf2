import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Logger } from '../../src/logger';
import { workflowBundle, workflowCodeVersion } from '../../src/worker/workflow-bundle';

const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bundle-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

function recorder(): Logger & { messages: string[] } {
  const messages: string[] = [];
  const logger: Logger & { messages: string[] } = { messages, log: (_level, msg) => void messages.push(msg), child: () => logger };
  return logger;
}

test(
  'the bundle is built once per version of the code, then loaded from the cache; older versions are removed',
  { timeout: 120_000 },
  async () => {
    const stale = path.join(cacheDir, 'workflows-0000000000000000.js');
    writeFileSync(stale, '// an older version');

    const first = recorder();
    const built = await workflowBundle(first, cacheDir);
    assert.ok(first.messages.includes('workflow bundle built'), first.messages.join(', '));
    assert.match(built.code, /inferenceJob/);
    assert.equal(path.basename(built.path), `workflows-${workflowCodeVersion()}.js`);
    assert.ok(!existsSync(stale), 'the older bundle was removed');

    const second = recorder();
    const loaded = await workflowBundle(second, cacheDir);
    assert.deepEqual(second.messages, ['workflow bundle loaded']);
    assert.equal(loaded.code, built.code);
    assert.deepEqual(readdirSync(cacheDir), [path.basename(built.path)]);
  },
);

test('the version is stable for the same code', () => {
  assert.equal(workflowCodeVersion(), workflowCodeVersion());
  assert.match(workflowCodeVersion(), /^[0-9a-f]{16}$/);
});
