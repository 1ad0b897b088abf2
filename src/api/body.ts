/** Request bodies of actions whose fields are all optional: none at all, or a JSON object the schema accepts. */
import type { Request } from 'express';
import type { z } from 'zod';
import { Problem } from './problems';

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
