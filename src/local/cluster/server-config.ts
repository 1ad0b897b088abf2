/**
 * The Temporal server's config for one service of the local cluster, in the shape of the module's
 * config/development-postgres12.yaml: PostgreSQL for both stores, NUM_HISTORY_SHARDS shards, every service's
 * ports on loopback, and the dynamic config Switchyard relies on (deploy/temporal/dynamic-config.yaml). Each
 * service gets a file of its own, as each needs its own Prometheus address. Written as JSON, which is YAML.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PG_USER } from './postgres';
import { SERVICES, type ServiceName, type ServicePorts } from './state';

/** Fixed when the databases are created: changing it later needs new databases. */
export const NUM_HISTORY_SHARDS = 8;
export const DYNAMIC_CONFIG_FILE = path.resolve(__dirname, '../../../deploy/temporal/dynamic-config.yaml');
const HOST = '127.0.0.1';

export interface ServerConfigInput {
  service: ServiceName;
  ports: Record<ServiceName, ServicePorts>;
  postgres: { port: number; password: string };
}

function datastore(database: string, port: number, password: string, maxConns: number) {
  return {
    sql: {
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: `${HOST}:${port}`,
      connectProtocol: 'tcp',
      user: PG_USER,
      password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  };
}

export function serverConfig({ service, ports, postgres }: ServerConfigInput): object {
  const rpc = (s: ServiceName) => ({
    rpc: {
      grpcPort: ports[s].grpc,
      membershipPort: ports[s].membership,
      bindOnLocalHost: true,
      ...(ports[s].http === undefined ? {} : { httpPort: ports[s].http }),
    },
  });
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: NUM_HISTORY_SHARDS,
      datastores: {
        'postgres-default': datastore('temporal', postgres.port, postgres.password, 10),
        'postgres-visibility': datastore('temporal_visibility', postgres.port, postgres.password, 2),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: HOST },
      metrics: {
        prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `${HOST}:${ports[service].metrics}` },
      },
    },
    // Every service's ports: each process finds the others through the membership ring in PostgreSQL.
    services: Object.fromEntries(SERVICES.map((s) => [s, rpc(s)])),
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `${HOST}:${ports.frontend.grpc}` },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: DYNAMIC_CONFIG_FILE, pollInterval: '10s' },
  };
}

/** Writes the service's config file (mode 600: it holds the database password) and returns its path. */
export function writeServerConfig(file: string, input: ServerConfigInput): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const header = `# ${input.service} of the local cluster, written by \`switchyard cluster up\` on every start.\n`;
  fs.writeFileSync(file, `${header}${JSON.stringify(serverConfig(input), null, 2)}\n`, { mode: 0o600 });
  return file;
}
