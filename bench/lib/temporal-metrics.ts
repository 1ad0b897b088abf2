/**
 * The Temporal dev server's own persistence metrics: `temporal server start-dev` serves Prometheus
 * metrics on a port of its own choosing, found here among the ports the process listens on. Counting
 * persistence requests by operation says how many database calls a job costs. Linux only (/proc).
 */
import fs from 'node:fs';

/** Ports `pid` listens on (IPv4 and IPv6), from the socket inodes it holds. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' });
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    for (const line of fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is "ADDR:PORT" in hex; state 0A is LISTEN; the inode is the 10th column.
      if (cols[3] === '0A' && inodes.has(cols[9]!)) ports.add(parseInt(cols[1]!.split(':').pop()!, 16));
    }
  }
  return [...ports];
}

/** The server's `/metrics` URL, or undefined when none of its ports serves Prometheus text. */
export async function findMetricsUrl(pid: number): Promise<string | undefined> {
  try {
    for (const port of listeningPorts(pid)) {
      const url = `http://127.0.0.1:${port}/metrics`;
      const text = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
        (r) => (r.ok ? r.text() : ''),
        () => '',
      );
      if (text.startsWith('# HELP')) return url;
    }
  } catch {
    /* not Linux, or the process is gone */
  }
  return undefined;
}

/** Requests and summed latency (ms) by persistence operation, over all services; visibility operations prefixed `visibility:`. */
export type PersistenceCounts = Map<string, { requests: number; latencyMs: number }>;

export async function persistenceCounts(url: string): Promise<PersistenceCounts> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
  const counts: PersistenceCounts = new Map();
  const metric = /^(visibility_)?persistence_(requests|latency_sum)\{([^}]*)\} ([0-9.e+-]+)$/;
  for (const line of text.split('\n')) {
    const m = metric.exec(line);
    const operation = m && /operation="([^"]+)"/.exec(m[3]!)?.[1];
    if (!m || !operation) continue;
    const key = `${m[1] ? 'visibility:' : ''}${operation}`;
    const entry = counts.get(key) ?? { requests: 0, latencyMs: 0 };
    // Latency histograms are in seconds.
    if (m[2] === 'requests') entry.requests += Number(m[4]);
    else entry.latencyMs += Number(m[4]) * 1000;
    counts.set(key, entry);
  }
  return counts;
}

/** What happened between two snapshots, per operation, largest first. */
export function persistenceUsed(before: PersistenceCounts, after: PersistenceCounts): [string, { requests: number; latencyMs: number }][] {
  return [...after]
    .map(([op, a]): [string, { requests: number; latencyMs: number }] => {
      const b = before.get(op) ?? { requests: 0, latencyMs: 0 };
      return [op, { requests: a.requests - b.requests, latencyMs: a.latencyMs - b.latencyMs }];
    })
    .filter(([, d]) => d.requests > 0)
    .sort((x, y) => y[1].requests - x[1].requests);
}
