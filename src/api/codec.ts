/**
 * The codec server for operators, in Temporal's remote codec protocol: POST /codec/decode and
 * /codec/encode take and answer `{"payloads": [...]}` as protobuf JSON (metadata values and data in
 * base64), so the Temporal UI and `temporal --codec-endpoint` show payloads as they were before the
 * codec (src/temporal/codec.ts) compressed and encrypted them. Only operators may call it (app.ts);
 * browsers may call it from the configured Temporal UI's origin alone.
 */
import express, { Router, type RequestHandler } from 'express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { decode, encode } from '@temporalio/common/lib/internal-non-workflow';
import { z } from 'zod';
import { declaredBodyLimit, jsonDepthLimit } from './body';
import { Problem } from './problems';

/** Temporal's payloads are at most a few MiB; base64 in JSON adds a third. */
const BODY_LIMIT_BYTES = 16 * 1024 * 1024;
/** Standard or URL-safe base64, padded or not: protobuf JSON accepts either. */
const base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'base64');

export const payloadsSchema = z.strictObject({
  payloads: z
    .array(
      z.strictObject({
        metadata: z.record(z.string(), base64).optional().describe('Each value base64'),
        data: base64.optional(),
      }),
    )
    .describe('Payloads as protobuf JSON (temporal.api.common.v1.Payloads)'),
});
type PayloadsJson = z.infer<typeof payloadsSchema>;

const fromJson = (p: PayloadsJson['payloads'][number]): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

/**
 * CORS for the Temporal UI's origins only, credentials allowed: the UI's requests carry Content-Type and
 * X-Namespace, so a browser asks first (OPTIONS), and is answered here before anything else runs.
 */
export function codecCors(origins: readonly string[]): RequestHandler {
  return (req, res, next) => {
    res.vary('Origin');
    const origin = req.get('origin');
    if (origin === undefined || !origins.includes(origin)) return next();
    res.set({ 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true' });
    if (req.method !== 'OPTIONS') return next();
    res.set({
      'Access-Control-Allow-Methods': 'POST',
      'Access-Control-Allow-Headers': 'Authorization, Content-Type, X-Namespace',
      'Access-Control-Max-Age': '600',
    });
    res.status(204).end();
  };
}

/** The origins a Temporal UI at `uiUrl` calls from: the same loopback UI is reached as localhost and as 127.0.0.1. */
export function uiOrigins(uiUrl: string | null): string[] {
  if (uiUrl === null) return [];
  const url = new URL(uiUrl);
  const aliases = ['localhost', '127.0.0.1'];
  if (!aliases.includes(url.hostname)) return [url.origin];
  return aliases.map((host) => `${url.protocol}//${host}${url.port ? `:${url.port}` : ''}`);
}

export function codecRouter(codecs: PayloadCodec[], namespace: string): Router {
  const router = Router();
  router.use(declaredBodyLimit(BODY_LIMIT_BYTES), express.json({ limit: BODY_LIMIT_BYTES }), jsonDepthLimit);
  const serve = (direction: 'encode' | 'decode') =>
    router.post(`/${direction}`, async (req, res) => {
      const asked = req.get('x-namespace');
      if (asked !== undefined && asked !== namespace)
        throw new Problem('invalid-request', `This codec serves namespace ${namespace}, not ${asked}`);
      const parsed = payloadsSchema.safeParse(req.body);
      if (!parsed.success) throw Problem.fromZod(parsed.error, 'body');
      const payloads = parsed.data.payloads.map(fromJson);
      let done: Payload[];
      try {
        done = direction === 'encode' ? await encode(codecs, payloads) : await decode(codecs, payloads);
      } catch (err) {
        // What fails here is the caller's payload: a key this API does not hold, altered bytes, a bad compressed stream.
        throw new Problem('undecodable-payload', (err as Error).message);
      }
      res.json({ payloads: done.map(toJson) });
    });
  serve('encode');
  serve('decode');
  return router;
}
