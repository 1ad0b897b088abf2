/** The HTTP calls the terminal commands make to a running API (SWITCHYARD_API_URL, SWITCHYARD_API_KEY). */
import type { Config } from '../config';

export type ApiCall = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** A call answered with its response as it comes, for the commands that stream a body up or down; an error status throws. */
export type ApiRequest = (
  method: string,
  path: string,
  send?: { body: string | ReadableStream<Uint8Array>; headers: Record<string, string> },
) => Promise<Response>;

export function apiRequest(config: Config): ApiRequest {
  return async (method, path, send) => {
    const res = await fetch(`${config.cli.apiUrl}${path}`, {
      method,
      headers: { ...send?.headers, ...(config.cli.apiKey ? { authorization: `Bearer ${config.cli.apiKey}` } : {}) },
      body: send?.body,
      // A streamed body is sent while the answer may already come (Node's fetch insists on being told).
      ...(send?.body instanceof ReadableStream ? { duplex: 'half' } : {}),
    });
    if (!res.ok) throw await problemOf(res);
    return res;
  };
}

export function apiClient(config: Config): ApiCall {
  const request = apiRequest(config);
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const send = body === undefined ? undefined : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
    return (await (await request(method, path, send)).json()) as T;
  };
}

/** The API's problem as an error: its status, code and detail, and the errors it lists (a field's path or a file's line). */
async function problemOf(res: Response): Promise<Error> {
  const problem = (await res.json().catch(() => ({}))) as {
    code?: string;
    detail?: string;
    errors?: { path?: string; line?: number; message: string }[];
  };
  const errors = (problem.errors ?? []).map((e) => `\n  ${e.line !== undefined ? `line ${e.line}` : (e.path ?? '')}: ${e.message}`);
  return new Error(`${res.status} ${problem.code ?? ''}: ${problem.detail ?? ''}${errors.join('')}`);
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}
