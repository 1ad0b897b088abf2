/**
 * API keys → tenants. Keys are compared as SHA-256 digests in constant time, and the tenant comes
 * only from the key — never from the body, path or query.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { Problem } from './problems';

/** The tenant used when the API runs without keys (allowed on loopback only). */
export const OPEN_TENANT = 'default';

const digest = (key: string) => createHash('sha256').update(key).digest();

export function authenticate(keys: readonly { tenant: string; key: string }[]): RequestHandler {
  const known = keys.map((k) => ({ tenant: k.tenant, digest: digest(k.key) }));
  return (req, res, next) => {
    if (known.length === 0) {
      res.locals.tenant = OPEN_TENANT;
      return next();
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    if (!match) return next(new Problem('unauthorized', 'Send Authorization: Bearer <api key>'));
    const presented = digest(match[1]!);
    // Check every key so timing does not tell which one came close.
    let tenant: string | undefined;
    for (const k of known) if (timingSafeEqual(k.digest, presented)) tenant ??= k.tenant;
    if (!tenant) return next(new Problem('unauthorized', 'The API key is not valid'));
    res.locals.tenant = tenant;
    next();
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
export const isLoopback = (host: string) => LOOPBACK.has(host) || host.startsWith('127.');
