/**
 * Requests to URLs that users give us (documents to fetch, webhooks to call), guarded against SSRF:
 * http and https only; every address the host resolves to must be a public one (see addresses.ts)
 * unless the operator allows its range; the connection goes to the address that was checked (the check
 * is node's `lookup` hook, so DNS cannot answer differently a moment later); redirects are followed by
 * hand and each one is checked again; the answer is cut off past a size limit and the whole exchange,
 * redirects included, past a time limit.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import dns from 'node:dns/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { type BlockList, isIP, type LookupFunction } from 'node:net';
import { SwitchyardError } from '../errors';
import { allowList, forbiddenReason } from './addresses';

export interface OutboundPolicy {
  /** CIDRs that may be reached although they are loopback, private or link-local. */
  allow: readonly string[];
  /** Limit for the whole exchange, redirects and reading the answer included. */
  timeoutMs: number;
  /** Largest answer body read. */
  maxBytes: number;
  maxRedirects: number;
}

export interface OutboundRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** `manual` returns a redirect as the answer instead of following it. */
  redirect?: 'follow' | 'manual';
}

export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered, after redirects. */
  finalUrl: string;
}

/** The URL may not be requested; `reason` says why in words a user understands. */
export class UrlRefusedError extends SwitchyardError {
  override readonly name = 'UrlRefusedError';
  readonly code = 'url-refused';
  constructor(readonly reason: string) {
    super(reason);
  }
}

export class OutboundTooLargeError extends SwitchyardError {
  override readonly name = 'OutboundTooLargeError';
  readonly code = 'outbound-too-large';
  constructor(readonly maxBytes: number) {
    super(`the answer is larger than ${maxBytes} bytes`);
  }
}

export class OutboundTimeoutError extends SwitchyardError {
  override readonly name = 'OutboundTimeoutError';
  readonly code = 'outbound-timeout';
  constructor(readonly timeoutMs: number) {
    super(`no complete answer within ${timeoutMs} ms`);
  }
}

/**
 * The request could not be made or was cut off (DNS failure, refused connection, reset, TLS error);
 * `systemCode` is the socket's own (ECONNREFUSED, ECONNRESET, …).
 */
export class OutboundNetworkError extends SwitchyardError {
  override readonly name = 'OutboundNetworkError';
  readonly code = 'outbound-network';
  constructor(
    message: string,
    readonly systemCode: string | undefined,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

/** How long the up-front check waits for DNS before letting the URL through to the guarded request. */
const CHECK_DNS_TIMEOUT_MS = 5000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlRefusedError(`"${raw.slice(0, 200)}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UrlRefusedError(`${url.protocol.slice(0, -1)} URLs are not allowed, only http and https`);
  }
  // They would end up in job inputs and logs.
  if (url.username || url.password) throw new UrlRefusedError('URLs with a user name or password are not allowed');
  return url;
}

/** `[::1]` → `::1`: the URL keeps IPv6 literals in brackets. */
const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

function checkAddress(host: string, address: string, allowed: BlockList): void {
  const why = forbiddenReason(address, allowed);
  if (why) throw new UrlRefusedError(host === address ? `${address} is ${why}` : `${host} resolves to ${address}, ${why}`);
}

async function resolveChecked(host: string, allowed: BlockList, family: LookupOptions['family'] = 0): Promise<LookupAddress[]> {
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await dns.lookup(host, { all: true, verbatim: true, family });
  for (const { address } of addresses) checkAddress(host, address, allowed);
  return addresses;
}

/** node's DNS hook for http(s).request: the socket connects only to addresses that passed the check. */
const guardedLookup =
  (allowed: BlockList): LookupFunction =>
  (hostname, options, callback) => {
    resolveChecked(hostname, allowed, options.family).then(
      (addresses) => (options.all ? callback(null, addresses) : callback(null, addresses[0]!.address, addresses[0]!.family)),
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };

/**
 * The up-front check (the API runs it before accepting a URL): scheme, credentials, and the addresses
 * the host resolves to now. A host that does not exist is refused; a DNS answer that is slow or fails
 * for a passing reason lets the URL through, since fetchOutbound checks again when it connects.
 */
export async function checkUrl(raw: string, policy: Pick<OutboundPolicy, 'allow'>): Promise<URL> {
  const url = parseUrl(raw);
  const host = hostOf(url);
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, CHECK_DNS_TIMEOUT_MS)));
  try {
    await Promise.race([resolveChecked(host, allowList(policy.allow)), gaveUp]);
  } catch (err) {
    if (err instanceof UrlRefusedError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOTFOUND') throw new UrlRefusedError(`${host} does not resolve to any address`);
  } finally {
    clearTimeout(timer);
  }
  return url;
}

function send(url: URL, req: OutboundRequest, allowed: BlockList, signal: AbortSignal): Promise<IncomingMessage> {
  // IP literals never reach the lookup hook: they are checked here.
  const host = hostOf(url);
  if (isIP(host)) checkAddress(host, host, allowed);
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(
      url,
      // No shared agent: a pooled connection made under another policy must not be reused.
      { method: req.method ?? 'GET', headers: req.headers, agent: false, lookup: guardedLookup(allowed), signal },
      resolve,
    );
    request.once('error', reject);
    request.end(req.body);
  });
}

async function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  if (Number(res.headers['content-length']) > maxBytes) {
    res.destroy();
    throw new OutboundTooLargeError(maxBytes);
  }
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of res as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > maxBytes) throw new OutboundTooLargeError(maxBytes); // leaving the loop destroys the response
    parts.push(part);
  }
  return Buffer.concat(parts);
}

/** The request a redirect leads to, as browsers do it: 303, and 301/302 after a POST, become a GET without body. */
function redirected(req: OutboundRequest, status: number, from: URL, to: URL): OutboundRequest {
  const headers = { ...req.headers };
  const method = req.method ?? 'GET';
  const toGet = status === 303 ? method !== 'HEAD' : (status === 301 || status === 302) && method === 'POST';
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    const dropped =
      (toGet && (lower === 'content-type' || lower === 'content-length')) ||
      (to.origin !== from.origin && (lower === 'authorization' || lower === 'cookie'));
    if (dropped) delete headers[name];
  }
  return toGet ? { method: 'GET', headers } : { ...req, headers };
}

/**
 * One guarded HTTP exchange. Throws UrlRefusedError (the URL, a redirect or a resolved address is not
 * allowed, or too many redirects), OutboundTooLargeError, OutboundTimeoutError, OutboundNetworkError,
 * or the reason of `signal` when the caller aborts. Any status is returned, not thrown.
 */
export async function fetchOutbound(
  raw: string,
  request: OutboundRequest,
  policy: OutboundPolicy,
  signal?: AbortSignal,
): Promise<OutboundResponse> {
  const allowed = allowList(policy.allow);
  const timeout = AbortSignal.timeout(policy.timeoutMs);
  const aborted = signal ? AbortSignal.any([timeout, signal]) : timeout;
  let url = parseUrl(raw);
  let req = request;
  try {
    for (let redirects = 0; ; redirects++) {
      const res = await send(url, req, allowed, aborted);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (!REDIRECTS.has(status) || !location || req.redirect === 'manual') {
        return { status, headers: res.headers, body: await readBody(res, policy.maxBytes), finalUrl: url.href };
      }
      res.resume();
      if (redirects >= policy.maxRedirects)
        throw new UrlRefusedError(`more than ${policy.maxRedirects} redirects, the last one to ${location}`);
      const next = parseUrl(new URL(location, url).href);
      req = redirected(req, status, url, next);
      url = next;
    }
  } catch (err) {
    if (err instanceof UrlRefusedError || err instanceof OutboundTooLargeError) throw err;
    if (timeout.aborted) throw new OutboundTimeoutError(policy.timeoutMs);
    if (signal?.aborted) throw signal.reason;
    const code = (err as NodeJS.ErrnoException).code;
    throw new OutboundNetworkError(`${req.method ?? 'GET'} ${url.origin} failed: ${(err as Error).message}`, code, { cause: err });
  }
}
