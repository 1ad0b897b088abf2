import { startApi } from '../api/server';
import type { Config } from '../config';
import type { Logger } from '../logger';

/** `switchyard api`: serves until SIGTERM/SIGINT, then stops taking requests and closes cleanly. */
export async function api(config: Config, log: Logger): Promise<number> {
  const server = await startApi(config, log);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await server.close();
  log.log('info', 'api stopped');
  return 0;
}
