/**
 * /docs: Swagger UI on /openapi.json, its assets served from the swagger-ui-dist package (nothing from a
 * CDN). The page runs no inline script — its initializer is a file of its own — so it works under the
 * Content-Security-Policy it is served with, which lets it load and call nothing but this origin.
 */
import path from 'node:path';
import express, { Router, type Request } from 'express';

const ASSETS_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
/** What the page loads from the package; its demo page and petstore initializer are not served. */
const ASSET = /^\/(swagger-ui-bundle\.js|swagger-ui\.css|favicon-(16x16|32x32)\.png)(\.map)?$/;

export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // The stylesheet draws its icons as data: URIs.
  "img-src 'self' data:",
  // The document, and "Try it out" calls to this API.
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchyard API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

/** No validator badge: it would send the document to a public validation service. */
const INITIALIZER = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    validatorUrl: null,
  });
});
`;

const isRead = (req: Request) => req.method === 'GET' || req.method === 'HEAD';

/** Mounted at /docs: the page, its initializer and the package's assets. */
export function docsUi(): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    res.set('Content-Security-Policy', DOCS_CSP).type('html').send(PAGE);
  });
  router.use('/init.js', (req, res, next) => (req.path === '/' && isRead(req) ? void res.type('js').send(INITIALIZER) : next()));
  router.use(
    '/assets',
    (req, _res, next) => (ASSET.test(req.path) ? next() : next('router')),
    express.static(ASSETS_DIR, { index: false, maxAge: '1h' }),
  );
  return router;
}
