/**
 * The methods of each path, as the OpenAPI document declares them: a documented path asked with a method
 * it does not declare is answered 405 with `Allow` listing exactly the declared ones (RFC 9110 §15.5.6),
 * and OPTIONS is answered with that `Allow`. Paths the document does not name are left to the 404.
 */
import type { RequestHandler } from 'express';
import { Problem } from './problems';

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

interface DocumentedPath {
  pattern: RegExp;
  methods: Set<string>;
  allow: string;
  templated: number;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A path template as a pattern; like Express's routing, case-insensitive and with an optional trailing slash. */
function patternOf(template: string): RegExp {
  const segments = template.split('/').map((segment) => (/^\{[^}]+\}$/.test(segment) ? '[^/]+' : escapeRegExp(segment)));
  return new RegExp(`^${segments.join('/')}/?$`, 'i');
}

function documentedPaths(paths: Record<string, object>): DocumentedPath[] {
  return (
    Object.entries(paths)
      .map(([template, item]) => {
        const methods = Object.keys(item)
          .filter((m) => HTTP_METHODS.has(m))
          .map((m) => m.toUpperCase());
        return {
          pattern: patternOf(template),
          methods: new Set(methods),
          allow: methods.join(', '),
          templated: (template.match(/\{/g) ?? []).length,
        };
      })
      // OpenAPI matches concrete paths before templated ones: /v1/jobs/retry is not /v1/jobs/{id}.
      .sort((a, b) => a.templated - b.templated)
  );
}

export function allowDocumentedMethods(paths: Record<string, object>): RequestHandler {
  const documented = documentedPaths(paths);
  return (req, res, next) => {
    const path = documented.find((p) => p.pattern.test(req.path));
    if (!path) return next();
    // HEAD is GET without the body, which Express answers for every GET route.
    if (path.methods.has(req.method) || (req.method === 'HEAD' && path.methods.has('GET'))) return next();
    res.set('Allow', path.allow);
    if (req.method === 'OPTIONS') return void res.status(204).end();
    next(new Problem('method-not-allowed', `${req.method} is not a method of ${req.path}; it allows ${path.allow}`));
  };
}
