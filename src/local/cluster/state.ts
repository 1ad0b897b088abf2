/**
 * Where the local cluster keeps its files under `<data dir>/cluster`, and state.json: the pids and ports of
 * its processes, written by `cluster up` and read by `status`, `down`, `up --cluster` and the tests.
 */
import fs from 'node:fs';
import path from 'node:path';

export const SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ServicePorts {
  grpc: number;
  membership: number;
  metrics: number;
  /** The frontend's HTTP API. */
  http?: number;
}

export interface ClusterState {
  /** The Temporal server version the processes run, and its executable (a pid counts as ours only while it runs this). */
  version: string;
  serverBin: string;
  namespace: string;
  /** `127.0.0.1:<frontend gRPC port>`: TEMPORAL_ADDRESS for Switchyard. */
  address: string;
  postgres: { port: number; pid: number | null };
  services: Record<ServiceName, ServicePorts & { pid: number | null }>;
  ui: { port: number; pid: number | null; bin: string } | null;
}

export interface ClusterPaths {
  root: string;
  pgData: string;
  /** PostgreSQL's Unix socket directory (its own, not /var/run/postgresql). */
  pgSocket: string;
  logs: string;
  state: string;
  /** The generated server config of a service. */
  serverConfig(service: ServiceName): string;
  uiConfigDir: string;
}

export function clusterPaths(root: string): ClusterPaths {
  return {
    root,
    pgData: path.join(root, 'postgres'),
    pgSocket: path.join(root, 'run'),
    logs: path.join(root, 'logs'),
    state: path.join(root, 'state.json'),
    serverConfig: (service) => path.join(root, `temporal-${service}.yaml`),
    uiConfigDir: path.join(root, 'ui'),
  };
}

export function readState(paths: ClusterPaths): ClusterState | null {
  try {
    return JSON.parse(fs.readFileSync(paths.state, 'utf8')) as ClusterState;
  } catch {
    return null;
  }
}

export function writeState(paths: ClusterPaths, state: ClusterState): void {
  fs.mkdirSync(paths.root, { recursive: true });
  const tmp = `${paths.state}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, paths.state);
}
