/** The HTTP calls the terminal commands make to a running API (SWITCHYARD_API_URL, SWITCHYARD_API_KEY). */
import type { Config } from '../config';

export type ApiCall = <T>(method: string, path: string, body?: unknown) => Promise<T>;

export function apiClient(config: Config): ApiCall {
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${config.cli.apiUrl}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(config.cli.apiKey ? { authorization: `Bearer ${config.cli.apiKey}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as T & { detail?: string; code?: string };
    if (!res.ok) throw new Error(`${res.status} ${json.code ?? ''}: ${json.detail ?? ''}`);
    return json;
  };
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}
