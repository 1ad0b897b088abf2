/**
 * The cluster's processes outlive `switchyard cluster up`, so they are known by pid alone. A pid counts as
 * one of ours only while /proc says it runs the executable we started: a reused pid is never signalled.
 */
import fs from 'node:fs';
import net from 'node:net';

export function isAlive(pid: number | null, executable: string): boolean {
  if (pid === null || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return state !== 'Z' && (argv0 === executable || argv0.endsWith(`/${executable}`));
  } catch {
    // No /proc (not Linux): the signal check above is all there is.
    return true;
  }
}

/** `first` (SIGTERM), then SIGKILL after `graceMs`; resolves once none of `pids` runs `executable` any more. */
export async function stopPids(pids: number[], executable: string, graceMs: number, first: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const ours = pids.filter((pid) => isAlive(pid, executable));
  for (const pid of ours) signal(pid, first);
  const deadline = Date.now() + graceMs;
  let killed = false;
  while (ours.some((pid) => isAlive(pid, executable))) {
    if (!killed && Date.now() > deadline) {
      for (const pid of ours.filter((p) => isAlive(p, executable))) signal(pid, 'SIGKILL');
      killed = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // It has just ended.
  }
}

export function acceptsTcp(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether `port` can be bound on loopback now. */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
