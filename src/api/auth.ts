/**
 * API keys → who is calling: a tenant, who owns jobs, or an operator, who manages pools. Keys are
 * compared as SHA-256 digests in constant time, and the caller comes only from the key — never from
 * the body, path or query.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Config } from '../config';
import { isLoopback } from '../net/addresses';
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

/** Only an operator key passes; `refusal` tells anyone else why. */
export const requireOperatorFor =
  (refusal: string): RequestHandler =>
  (_req, res, next) =>
    next(callerOf(res).operator ? undefined : new Problem('forbidden', refusal));

/** Pools are shared by every tenant: only an operator key may read or change them. */
export const requireOperator = requireOperatorFor('Pools need an operator key (SWITCHYARD_OPERATOR_KEYS)');

const callerOf = (res: Response): Caller => res.locals.caller as Caller;

/**
 * What the API lacks to listen beyond loopback: API keys, or everyone is tenant `default`; encryption
 * keys, or every tenant's data would be stored in Temporal in the clear. Empty on loopback.
 */
export function offLoopbackProblems(config: Pick<Config, 'api' | 'temporal'>): string[] {
  const { host } = config.api;
  if (isLoopback(host)) return [];
  return [
    ...(config.api.keys.length ? [] : [`SWITCHYARD_API_KEYS is empty: the API runs without keys only on loopback, not on ${host}`]),
    ...(config.temporal.payloads.keys.length
      ? []
      : [
          `SWITCHYARD_ENCRYPTION_KEYS is empty: jobs would be stored in Temporal in the clear, which the API allows only on loopback, ` +
            `not on ${host}. Make a key with: echo "k1:$(openssl rand -base64 32)" (docs/security.md)`,
        ]),
  ];
}

/** The tenant `authenticate` found for this request. */
export const tenantOf = (req: Request): string => req.res!.locals.tenant as string;
