/**
 * deploy/k8s, docker-compose.yml and the files they mount, checked offline: Kubernetes objects against
 * their schemas (KEDA's included) and each other, the compose file with `docker-compose config -q`, both
 * against Switchyard's own configuration and task-queue names, and the Temporal they run (compose, the Helm
 * values in deploy/k8s/temporal) against the local cluster's.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config';
import { DYNAMIC_CONFIG } from '../../src/local/dev-server';
import { type Manifest, readManifests, referenceProblems, schemaProblems } from '../fixtures/k8s-manifests';
import { composeProblems, HELM_VALUES_FILE, helmValuesProblems } from '../fixtures/temporal-deployments';

const ROOT = path.resolve(__dirname, '../..');
const K8S = path.join(ROOT, 'deploy', 'k8s');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

const manifests = readManifests(K8S);
const copy = (): Manifest[] => structuredClone(manifests);
const find = (list: Manifest[], kind: string, name: string) => {
  const found = list.find((m) => m.object.kind === kind && m.object.metadata.name === name);
  assert.ok(found, `${kind}/${name} is in deploy/k8s`);
  return found.object;
};

test('every Kubernetes object validates against its schema', async () => {
  const kinds = new Set(manifests.map((m) => m.object.kind));
  for (const kind of [
    'Namespace',
    'ConfigMap',
    'Secret',
    'Deployment',
    'Service',
    'HorizontalPodAutoscaler',
    'PodDisruptionBudget',
    'ScaledObject',
  ]) {
    assert.ok(kinds.has(kind), `deploy/k8s has a ${kind}`);
  }
  assert.deepEqual(await schemaProblems(manifests), []);
});

test('the Kubernetes objects agree with each other and with the configuration', () => {
  assert.deepEqual(referenceProblems(manifests, K8S), []);
});

test('a broken manifest is reported', async () => {
  const broken = copy();
  find(broken, 'Deployment', 'switchyard-api').spec.replicas = 'two';
  find(broken, 'ScaledObject', 'switchyard-pool-local').spec.pollingInterval = 'fast';
  const schema = await schemaProblems(broken);
  assert.ok(
    schema.some((p) => p.includes('Deployment/switchyard-api') && p.includes('replicas')),
    schema.join('\n'),
  );
  assert.ok(
    schema.some((p) => p.includes('ScaledObject/switchyard-pool-local') && p.includes('pollingInterval')),
    schema.join('\n'),
  );

  const wrong = copy();
  find(wrong, 'Service', 'switchyard-api').spec.selector['app.kubernetes.io/component'] = 'apii';
  find(wrong, 'Deployment', 'switchyard-pool-local').spec.template.spec.terminationGracePeriodSeconds = 30;
  const trigger = find(wrong, 'ScaledObject', 'switchyard-pool-local').spec.triggers[0].metadata;
  trigger.taskQueue = 'switchyard-local';
  delete trigger.queueTypes;
  find(wrong, 'HorizontalPodAutoscaler', 'switchyard-api').spec.scaleTargetRef.name = 'api';
  const scaledObject = find(wrong, 'ScaledObject', 'switchyard-pool-local').spec;
  const desired = scaledObject.triggers.find((t: any) => t.type === 'prometheus');
  desired.metadata.query = desired.metadata.query.replace('local', 'gpu');
  const valueTyped = structuredClone(desired);
  valueTyped.metadata.query = 'max(switchyard_pool_desired_workers{pool="local"})';
  valueTyped.metricType = 'Value';
  scaledObject.triggers.push(valueTyped);
  scaledObject.maxReplicaCount = 12;
  const problems = referenceProblems(wrong, K8S).join('\n');
  for (const expected of [
    /Service\/switchyard-api: its selector matches no Deployment/,
    /Deployment\/switchyard-pool-local: terminationGracePeriodSeconds \(30000 ms\) is not above SWITCHYARD_SHUTDOWN_GRACE_MS/,
    /taskQueue switchyard-local is not the target's pool queue \(switchyard-pool-local\)/,
    /queueTypes must be "activity"/,
    /HorizontalPodAutoscaler\/switchyard-api: scaleTargetRef names no Deployment api/,
    /the query's pool gpu is not the target's \(local\)/,
    /desired workers need metricType AverageValue and threshold "1", not Value and 1/,
    /replicas 1–12 are not the pool's scaling bounds 1–10/,
  ]) {
    assert.match(problems, expected);
  }
});

function hasDockerCompose(): boolean {
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('docker-compose.yml passes docker-compose config -q', async (t) => {
  if (!hasDockerCompose()) {
    t.skip('docker-compose is not installed (Debian/Ubuntu: apt-get install docker-compose); the file was not validated');
    return;
  }
  const run = (file: string) =>
    promisify(execFile)('docker-compose', ['-f', file, 'config', '-q'], { cwd: ROOT, env: { ...process.env, SWITCHYARD_API_KEYS: '' } });
  await run(COMPOSE_FILE);
  // It does reject a bad file (a misspelt option), so the pass above means something.
  const bad = path.join(ROOT, `.docker-compose.broken-${process.pid}.yml`);
  fs.writeFileSync(bad, fs.readFileSync(COMPOSE_FILE, 'utf8').replaceAll('stop_grace_period:', 'stop_grace_priod:'));
  t.after(() => fs.rmSync(bad, { force: true }));
  await assert.rejects(run(bad), /stop_grace_priod/);
});

/** `40s`, `1m30s`, `500ms` → milliseconds. */
function durationMs(text: string): number {
  const parts = [...String(text).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  assert.ok(parts.length, `a duration: ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  return parts.reduce((sum, [, n, u]) => sum + Number(n) * unit[u as keyof typeof unit], 0);
}

test('docker-compose.yml: valid Switchyard configuration, workers drain before the kill, a server with what Switchyard needs', () => {
  const compose = parse(fs.readFileSync(COMPOSE_FILE, 'utf8'), { merge: true });
  const services: Record<string, any> = compose.services;
  const workers = Object.entries(services).filter(([, s]) => s.command?.[0] === 'worker');
  assert.deepEqual(workers.map(([name]) => name).sort(), ['pool-local', 'workflows']);
  for (const [name, service] of Object.entries(services).filter(([, s]) => s.image === 'switchyard:local')) {
    const config = loadConfig({ ...service.environment, SWITCHYARD_API_KEYS: 'demo:change-me-to-a-long-random-key' });
    if (service.command?.[0] !== 'worker') continue;
    assert.ok(
      durationMs(service.stop_grace_period) > config.worker.shutdownGraceMs,
      `${name}: stop_grace_period above SWITCHYARD_SHUTDOWN_GRACE_MS`,
    );
    assert.equal(service.environment.SWITCHYARD_WORKER_METRICS_ADDRESS, '0.0.0.0:9464', `${name} serves metrics where Prometheus looks`);
  }

  // Every file the compose file mounts is in the repository.
  for (const service of Object.values(services)) {
    for (const volume of service.volumes ?? []) {
      const source = String(volume).split(':')[0]!;
      if (source.startsWith('./')) assert.ok(fs.existsSync(path.join(ROOT, source)), `${source} exists`);
    }
  }

  // The server gets the dynamic config the dev server runs with (fairness, updates, one partition).
  const temporal = services.temporal;
  const mount = temporal.volumes.find((v: string) => v.includes(temporal.environment.DYNAMIC_CONFIG_FILE_PATH));
  assert.ok(mount, 'the dynamic config file is mounted where DYNAMIC_CONFIG_FILE_PATH points');
  const dynamicConfig = parse(fs.readFileSync(path.join(ROOT, mount.split(':')[0]), 'utf8'));
  for (const entry of DYNAMIC_CONFIG) {
    const [key, value] = entry.split('=') as [string, string];
    assert.equal(String(dynamicConfig[key]?.[0]?.value), value, `dynamic config ${key}`);
  }
  const [, minor] = /temporalio\/server:1\.(\d+)/.exec(temporal.image) ?? [];
  assert.ok(Number(minor) >= 29, `${temporal.image}: fairness and task-queue config need server ≥ 1.29`);

  // Prometheus scrapes the API's metrics address and every worker service (each replica, through DNS).
  const prometheus = parse(fs.readFileSync(path.join(ROOT, 'deploy', 'prometheus.yml'), 'utf8'));
  const workerJob = prometheus.scrape_configs.find((j: any) => j.job_name === 'switchyard-workers');
  assert.deepEqual([...workerJob.dns_sd_configs[0].names].sort(), workers.map(([name]) => name).sort());
  assert.equal(workerJob.dns_sd_configs[0].port, 9464);
  const apiJob = prometheus.scrape_configs.find((j: any) => j.job_name === 'switchyard-api');
  const apiMetricsPort = String(services.api.environment.SWITCHYARD_API_METRICS_ADDRESS).split(':').pop();
  assert.deepEqual(apiJob.static_configs[0].targets, [`api:${apiMetricsPort}`]);
});

test('docker-compose.yml and the Helm values run the local cluster’s Temporal: server version, history shards, dynamic config', () => {
  const compose = parse(fs.readFileSync(COMPOSE_FILE, 'utf8'), { merge: true });
  const values = parse(fs.readFileSync(HELM_VALUES_FILE, 'utf8'));
  assert.deepEqual(composeProblems(compose), []);
  assert.deepEqual(helmValuesProblems(values), []);

  // Drift from the local cluster is reported.
  compose.services.temporal.image = 'temporalio/server:1.31.0';
  compose.services.temporal.environment.NUM_HISTORY_SHARDS = '4';
  compose.services.temporal.volumes = [];
  values.admintools.image.tag = '1.31.0';
  values.server.config.persistence.numHistoryShards = 512;
  delete values.server.dynamicConfig['matching.enableFairness'];
  const problems = [...composeProblems(compose), ...helmValuesProblems(values)].join('\n');
  for (const expected of [
    /docker-compose.yml: temporal image tag is "1.31.0", not "1.32.2"/,
    /docker-compose.yml: temporal NUM_HISTORY_SHARDS is 4, not 8/,
    /docker-compose.yml: the dynamic config mounted at .* is undefined/,
    /values.yaml: admintools.image.tag is "1.31.0"/,
    /values.yaml: server.config.persistence.numHistoryShards is 512, not 8/,
    /values.yaml: server.dynamicConfig is/,
  ]) {
    assert.match(problems, expected);
  }
});
