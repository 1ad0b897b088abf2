import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import { ActionNeeded } from '../errors';
import { createClient } from '../temporal/connection';
import { ensureNamespace, isNotFound } from '../temporal/namespace';
import { ensureSearchAttributes, SEARCH_ATTRIBUTES } from '../temporal/search-attributes';

const WAIT_MS = 120_000;
const SAY_EVERY_MS = 10_000;
/** A namespace or search attribute just added takes the server's caches a moment to see. */
const SETTLE_MS = 30_000;

export interface SetupOptions {
  /** Register the namespace with this retention when it does not exist (the local cluster), instead of failing. */
  createNamespace?: { retentionDays: number };
}

/**
 * `switchyard setup`: prepares an external Temporal server for Switchyard — waits until it answers (saying
 * so while it waits), checks the namespace exists (or creates it, for the local cluster), then registers the
 * search attributes jobs carry and waits until queries can use them. Idempotent; `up` runs it for external servers.
 */
export async function setup(config: Config, say: (line: string) => void = console.log, opts: SetupOptions = {}): Promise<number> {
  const { namespace, address } = config.temporal;
  const client = createClient(config.temporal);
  try {
    await waitForServer(client, address, say);
    if (opts.createNamespace) {
      const { retentionDays } = opts.createNamespace;
      if (await ensureNamespace(client.connection, namespace, retentionDays))
        say(`namespace "${namespace}" created (retention ${retentionDays} days)`);
    } else {
      await client.workflowService.describeNamespace({ namespace }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
        throw new ActionNeeded(
          `Temporal at ${address} answers, but has no namespace "${namespace}". Create it ` +
            `(temporal operator namespace create --namespace ${namespace} --address ${address}), or set TEMPORAL_NAMESPACE ` +
            'to one that exists; on the local cluster `switchyard cluster up` creates it.',
        );
      });
    }
    const { added } = await settling(() => ensureSearchAttributes(client.connection, namespace, say));
    if (added.length) {
      const unknownYet = (err: unknown) => isNotFound(err) || /search attribute|not defined/i.test((err as Error).message);
      await settling(() => client.workflowService.countWorkflowExecutions({ namespace, query: probeQuery() }), unknownYet);
    }
    say(`Temporal at ${address} is ready for Switchyard (namespace ${namespace})`);
    return 0;
  } finally {
    await client.connection.close();
  }
}

/** Waits until the server answers at all, saying every few seconds what it waits for. */
async function waitForServer(client: Client, address: string, say: (line: string) => void): Promise<void> {
  const t0 = Date.now();
  let saidAt = 0;
  for (;;) {
    try {
      await client.workflowService.getSystemInfo({});
      return;
    } catch (err) {
      const why = (err as Error).message;
      if (Date.now() - t0 > WAIT_MS)
        throw new ActionNeeded(`Temporal at ${address} did not answer within ${WAIT_MS / 1000} s: ${why}`, { cause: err });
      if (Date.now() - saidAt >= SAY_EVERY_MS) {
        say(`waiting for Temporal at ${address} (${why})`);
        saidAt = Date.now();
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Retries `fn` while the server does not know yet what was just added (a namespace: NOT_FOUND). */
async function settling<T>(fn: () => Promise<T>, transient: (err: unknown) => boolean = isNotFound): Promise<T> {
  for (const deadline = Date.now() + SETTLE_MS; ;) {
    try {
      return await fn();
    } catch (err) {
      if (!transient(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const probeQuery = () =>
  Object.values(SEARCH_ATTRIBUTES)
    .map((k) => (k.type === 'INT' ? `${k.name} = 0` : `${k.name} = 'setup-probe'`))
    .join(' AND ');
