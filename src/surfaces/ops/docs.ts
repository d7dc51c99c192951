// Swagger UI at /docs, served by this service from the swagger-ui-dist package:
// no third-party script on the auth origin, and a CSP that allows only our files.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Context } from 'hono';
import { PAGE_CSP } from '../../lib/html-csp.js';
import { problem } from '../../lib/problem.js';

// Our own start-up script, a file rather than inline so script-src needs no 'unsafe-inline'.
const INIT_JS = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', validatorUrl: null });
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>auth-system API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<noscript><p>This page needs JavaScript. The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</p></noscript>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
`;

/** The only names /docs/assets/ serves: a Map, so no prototype key or path ever matches. */
const ASSETS = new Map<string, { type: string; file?: string; text?: string }>([
  ['swagger-ui.css', { type: 'text/css; charset=utf-8', file: 'swagger-ui.css' }],
  ['swagger-ui-bundle.js', { type: 'text/javascript; charset=utf-8', file: 'swagger-ui-bundle.js' }],
  ['favicon-32x32.png', { type: 'image/png', file: 'favicon-32x32.png' }],
  ['init.js', { type: 'text/javascript; charset=utf-8', text: INIT_JS }],
]);

/** Handlers for `GET /docs` and `GET /docs/assets/:file`; package files are read on first use, then kept. */
export function docsHandlers() {
  let dir: string | undefined;
  const loaded = new Map<string, Uint8Array<ArrayBuffer> | string>();
  const body = (name: string, asset: { file?: string; text?: string }) => {
    let data = loaded.get(name);
    if (data === undefined) {
      if (asset.text !== undefined) data = asset.text;
      else {
        // Its package.json, not its main module, which would evaluate the browser bundle here.
        dir ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
        data = new Uint8Array(readFileSync(join(dir, asset.file!)));
      }
      loaded.set(name, data);
    }
    return data;
  };

  return {
    page: (c: Context) => {
      return c.html(PAGE, 200, { 'Content-Security-Policy': PAGE_CSP, 'X-Frame-Options': 'DENY', 'Cache-Control': 'no-cache' });
    },
    asset: (c: Context) => {
      const name = c.req.param('file') ?? '';
      const asset = ASSETS.get(name);
      if (!asset) problem('not_found', `No docs asset ${name}`);
      return c.body(body(name, asset), 200, { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=3600' });
    },
  };
}
