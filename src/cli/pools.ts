/** `switchyard pools | pause | resume`: a pool's queue, limits and breaker, and pausing it (operator key). */
import { parseArgs } from 'node:util';
import type { Config } from '../config';
import { apiClient, printJson } from './api-client';

export async function poolsCommand(config: Config, command: string, args: string[]): Promise<number> {
  const api = apiClient(config);
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { reason: { type: 'string' } } });
  const [pool] = positionals;
  if (command === 'pools') {
    printJson(await api('GET', pool ? `/v1/pools/${encodeURIComponent(pool)}` : '/v1/pools'));
    return 0;
  }
  if (!pool) throw new Error(`usage: switchyard ${command} POOL${command === 'pause' ? ' [--reason TEXT]' : ''}`);
  const body = command === 'pause' && values.reason ? { reason: values.reason } : undefined;
  printJson(await api('POST', `/v1/pools/${encodeURIComponent(pool)}/${command}`, body));
  return 0;
}
