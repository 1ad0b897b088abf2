/**
 * The cluster's loopback ports: a configured one, else the one it had last time (so TEMPORAL_ADDRESS stays
 * the same across restarts), else a free one below 32768 — Temporal's PostgreSQL schema keeps a service's
 * membership port in a smallint, so the kernel's ephemeral ports (32768 and up) make a service fail to join.
 */
import { randomInt } from 'node:crypto';
import { ActionNeeded } from '../../errors';
import { isPortFree } from './pids';

const LOW = 20_000;
const HIGH = 32_767;
import { SERVICES, type ClusterState, type ServiceName, type ServicePorts } from './state';

export class PortPicker {
  readonly #taken = new Set<number>();

  /** `configured` must be free; `previous` is kept when free; otherwise a free port nobody here has taken. */
  async pick(what: string, configured: number | undefined, previous: number | undefined): Promise<number> {
    if (configured !== undefined) {
      if (this.#taken.has(configured) || !(await isPortFree(configured)))
        throw new ActionNeeded(`${what}: the configured port 127.0.0.1:${configured} is not free`);
      return this.#take(configured);
    }
    if (previous !== undefined && !this.#taken.has(previous) && (await isPortFree(previous))) return this.#take(previous);
    for (;;) {
      const port = randomInt(LOW, HIGH + 1);
      if (!this.#taken.has(port) && (await isPortFree(port))) return this.#take(port);
    }
  }

  /** A port a running process holds already. */
  keep(port: number): number {
    return this.#take(port);
  }

  #take(port: number): number {
    this.#taken.add(port);
    return port;
  }
}

/** Ports for every service: those of `running` services are kept as they are. */
export async function servicePorts(
  picker: PortPicker,
  previous: ClusterState | null,
  running: ReadonlySet<ServiceName>,
  frontendPort: number | undefined,
): Promise<Record<ServiceName, ServicePorts>> {
  const out = {} as Record<ServiceName, ServicePorts>;
  for (const s of SERVICES) {
    const prev = previous?.services[s];
    if (prev && running.has(s)) {
      out[s] = { grpc: picker.keep(prev.grpc), membership: picker.keep(prev.membership), metrics: picker.keep(prev.metrics) };
      if (prev.http !== undefined) out[s].http = picker.keep(prev.http);
      continue;
    }
    out[s] = {
      grpc: await picker.pick(`${s} gRPC`, s === 'frontend' ? frontendPort : undefined, prev?.grpc),
      membership: await picker.pick(`${s} membership`, undefined, prev?.membership),
      metrics: await picker.pick(`${s} metrics`, undefined, prev?.metrics),
    };
    if (s === 'frontend') out[s].http = await picker.pick('frontend HTTP', undefined, prev?.http);
  }
  return out;
}
