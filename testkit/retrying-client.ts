/**
 * A client as the API asks to be used while something behind it restarts: a request answered `503` or `429`
 * is sent again — the same body and the same Idempotency-Key, so the API starts the job (or message) at most
 * once — after the `Retry-After` it was told; one the API never answered (it was down) is sent again at once
 * a moment later. Tests and the soak submit through it and count what was accepted.
 */
import { sleep, WAIT_LIMIT_MS } from './wait';

export interface Accepted {
  status: number;
  body: any;
  /** Answers before this one: 503s, 429s and connections refused. */
  refused: number;
}

/** When the API did not answer at all (its process restarting), the next try. */
const UNANSWERED_RETRY_MS = 250;

/**
 * POSTs `body` to `url` — as JSON, or a string as it is (with the Content-Type in `headers`) — until the API
 * answers anything but 503 or 429, or `timeoutMs` has passed.
 */
export async function postUntilAnswered(
  url: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs = WAIT_LIMIT_MS,
): Promise<Accepted> {
  const deadline = Date.now() + timeoutMs;
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  for (let refused = 0; ; refused++) {
    let waitMs = UNANSWERED_RETRY_MS;
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });
      const text = await res.text();
      if (res.status !== 503 && res.status !== 429) return { status: res.status, body: text ? JSON.parse(text) : undefined, refused };
      // The wait the server asked for: the protocol, not a guess at how long anything takes.
      waitMs = Number(res.headers.get('retry-after') ?? 1) * 1000;
    } catch {
      // refused or reset: the API is restarting
    }
    if (Date.now() + waitMs > deadline) throw new Error(`POST ${url} was not answered but with 503/429 within ${timeoutMs} ms`);
    await sleep(waitMs);
  }
}
