import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { PortPicker, servicePorts } from '../../src/local/cluster/ports';
import { DYNAMIC_CONFIG_FILE, NUM_HISTORY_SHARDS, serverConfig } from '../../src/local/cluster/server-config';
import { SERVICES } from '../../src/local/cluster/state';

test('cluster ports are distinct and below 32768 (Temporal keeps membership ports in a PostgreSQL smallint)', async () => {
  const ports = await servicePorts(new PortPicker(), null, new Set(), undefined);
  const all = SERVICES.flatMap((s) => Object.values(ports[s]));
  assert.equal(new Set(all).size, all.length);
  for (const p of all) assert.ok(p >= 1024 && p < 32768, String(p));
  assert.ok(ports.frontend.http !== undefined && ports.history.http === undefined);
});

test('each service config has its own Prometheus address, every service on loopback, and the deploy dynamic config', async () => {
  const ports = await servicePorts(new PortPicker(), null, new Set(), undefined);
  const configs = SERVICES.map(
    (service) => serverConfig({ service, ports, postgres: { port: 5999, password: 'pw' } }) as Record<string, any>,
  );
  const metrics = configs.map((c) => c.global.metrics.prometheus.listenAddress);
  assert.equal(new Set(metrics).size, SERVICES.length);
  for (const c of configs) {
    assert.equal(c.persistence.numHistoryShards, NUM_HISTORY_SHARDS);
    assert.equal(c.persistence.datastores['postgres-default'].sql.connectAddr, '127.0.0.1:5999');
    assert.equal(c.clusterMetadata.clusterInformation.active.rpcAddress, `127.0.0.1:${ports.frontend.grpc}`);
    assert.equal(c.dynamicConfigClient.filepath, DYNAMIC_CONFIG_FILE);
    for (const s of SERVICES) assert.equal(c.services[s].rpc.bindOnLocalHost, true);
  }
  assert.ok(NUM_HISTORY_SHARDS > 1);
  assert.ok(fs.existsSync(DYNAMIC_CONFIG_FILE));
});

test('a port kept from the last run is reused while it is free', async () => {
  const first = await new PortPicker().pick('x', undefined, undefined);
  assert.equal(await new PortPicker().pick('x', undefined, first), first);
});
