/**
 * Request bodies and query strings: limits checked before and after the JSON parser, bodies of actions
 * whose fields are all optional, and query strings checked like bodies (unknown parameters are errors).
 */
import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import { Problem } from './problems';

/** Deeper JSON than any request needs; deeper still would overflow recursive code that walks it. */
export const MAX_JSON_DEPTH = 64;

/** The query of a route that takes no parameters: any parameter is an unknown one. */
export const NO_QUERY = z.strictObject({});

/**
 * A body announced (Content-Length) over `maxBytes` is refused before a byte of it is read: the JSON
 * parser would read it all first, and a client that announces more than it sends would hold the answer
 * up until the request timeout.
 */
export function declaredBodyLimit(maxBytes: number): RequestHandler {
  return (req, _res, next) => {
    const declared = Number(req.get('content-length') ?? 0);
    next(declared > maxBytes ? new Problem('payload-too-large', `The body is ${declared} bytes; the limit is ${maxBytes}`) : undefined);
  };
}

/** After the JSON parser: a body nested deeper than MAX_JSON_DEPTH is refused, measured without recursion. */
export const jsonDepthLimit: RequestHandler = (req, _res, next) => {
  const pending: [unknown, number][] = [[req.body, 1]];
  for (let item = pending.pop(); item; item = pending.pop()) {
    const [value, depth] = item;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_JSON_DEPTH) {
      const message = `nested deeper than ${MAX_JSON_DEPTH} levels`;
      return next(new Problem('invalid-request', `body: ${message}`, { errors: [{ path: 'body', message }] }));
    }
    for (const child of Object.values(value)) pending.push([child, depth + 1]);
  }
  next();
};

export function optionalJsonBody<S extends z.ZodType>(req: Request, schema: S): z.infer<S> {
  // A body-less POST may still say `Content-Length: 0`; only a body with content must be JSON.
  const hasContent = req.get('transfer-encoding') !== undefined || Number(req.get('content-length') ?? 0) > 0;
  if (hasContent && !req.is('application/json')) throw new Problem('unsupported-media-type');
  const parsed = schema.safeParse(req.body === undefined ? {} : req.body);
  if (!parsed.success) throw Problem.fromZod(parsed.error, 'body');
  return parsed.data;
}

export function queryOf<S extends z.ZodType>(req: Request, schema: S): z.infer<S> {
  const parsed = schema.safeParse(req.query);
  if (!parsed.success) throw Problem.fromZod(parsed.error, 'query');
  return parsed.data;
}
