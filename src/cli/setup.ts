import type { Config } from '../config';
import { createClient } from '../temporal/connection';
import { ensureSearchAttributes } from '../temporal/search-attributes';

const WAIT_MS = 120_000;

/**
 * `switchyard setup`: prepares an external Temporal server for Switchyard — waits until it answers,
 * then registers the search attributes jobs carry. Idempotent; `up` runs it for external servers.
 */
export async function setup(config: Config, say: (line: string) => void = console.log): Promise<number> {
  const { namespace, address } = config.temporal;
  const client = createClient(config.temporal);
  try {
    for (let deadline = Date.now() + WAIT_MS; ;) {
      try {
        await client.workflowService.describeNamespace({ namespace });
        break;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`Temporal at ${address} (namespace ${namespace}) did not answer: ${(err as Error).message}`, { cause: err });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    await ensureSearchAttributes(client.connection, namespace, say);
    say(`Temporal at ${address} is ready for Switchyard (namespace ${namespace})`);
    return 0;
  } finally {
    await client.connection.close();
  }
}
