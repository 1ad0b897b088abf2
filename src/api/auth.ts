/**
 * API keys → who is calling: a tenant, who owns jobs, or an operator, who manages pools. Keys are
 * compared as SHA-256 digests in constant time, and the caller comes only from the key — never from
 * the body, path or query.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { Problem } from './problems';

/** The tenant used when the API runs without tenant keys (allowed on loopback only). */
export const OPEN_TENANT = 'default';

export interface Caller {
  /** The tenant whose jobs the caller may see; undefined for an operator key. */
  tenant?: string;
  operator: boolean;
}

const digest = (key: string) => createHash('sha256').update(key).digest();

export function authenticate(keys: { tenants: readonly { tenant: string; key: string }[]; operators: readonly string[] }): RequestHandler {
  const known: { caller: Caller; digest: Buffer }[] = [
    ...keys.tenants.map((k) => ({ caller: { tenant: k.tenant, operator: false }, digest: digest(k.key) })),
    ...keys.operators.map((key) => ({ caller: { operator: true }, digest: digest(key) })),
  ];
  const openTenant = keys.tenants.length === 0;
  return (req, res, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    const presented = match ? digest(match[1]!) : undefined;
    // Check every key so timing does not tell which one came close. A key may be listed under both roles.
    let caller: Caller | undefined;
    for (const k of known) {
      if (presented && timingSafeEqual(k.digest, presented)) {
        caller = { tenant: caller?.tenant ?? k.caller.tenant, operator: Boolean(caller?.operator || k.caller.operator) };
      }
    }
    // Without tenant keys (loopback only) everyone else is the open tenant, and with no keys at all also an operator.
    if (!caller && openTenant) caller = { tenant: OPEN_TENANT, operator: keys.operators.length === 0 };
    if (!caller) return next(new Problem('unauthorized', match ? 'The API key is not valid' : 'Send Authorization: Bearer <api key>'));
    res.locals.caller = caller;
    res.locals.tenant = caller.tenant;
    next();
  };
}

/** Jobs belong to tenants: an operator key may not submit, read or retry them. */
export const requireTenant: RequestHandler = (_req, res, next) =>
  next(callerOf(res).tenant === undefined ? new Problem('forbidden', 'An operator key manages pools; jobs need a tenant key') : undefined);

/** Pools are shared by every tenant: only an operator key may read or change them. */
export const requireOperator: RequestHandler = (_req, res, next) =>
  next(callerOf(res).operator ? undefined : new Problem('forbidden', 'Pools need an operator key (SWITCHYARD_OPERATOR_KEYS)'));

const callerOf = (res: Response): Caller => res.locals.caller as Caller;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
export const isLoopback = (host: string) => LOOPBACK.has(host) || host.startsWith('127.');

/** The tenant `authenticate` found for this request. */
export const tenantOf = (req: Request): string => req.res!.locals.tenant as string;
