import { parseArgs } from 'node:util';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { runWorker } from '../worker/run';

/** `switchyard worker`: flags choose the roles; without flags, config does (all pools if it names none). */
export async function worker(config: Config, args: string[], log: Logger): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { workflows: { type: 'boolean' }, pool: { type: 'string', multiple: true } },
  });
  const flagged = values.workflows !== undefined || values.pool !== undefined;
  const roles = flagged
    ? { workflows: values.workflows ?? false, pools: values.pool ?? [] }
    : {
        workflows: config.worker.workflows,
        pools: config.worker.pools.length ? config.worker.pools : Object.keys(config.pools),
      };
  await runWorker(config, roles, log.child({ roles: [roles.workflows ? 'workflows' : [], ...roles.pools].flat() }));
  return 0;
}
