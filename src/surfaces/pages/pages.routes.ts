// The hosted pages (/login ... /console, as the page registry lists them) and
// their two assets. Every page is the same small HTML shell; the script
// renders it and talks to the API through the project's typed client, like any
// frontend. A strict CSP: files from this origin only, no inline script or
// style, never framed.
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { PAGE_CSP } from '../../lib/html-csp.js';
import { problem } from '../../lib/problem.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { GUEST_ALLOWED } from '../../security/permissions.js';
import { hostedPages, webAssets } from './assets.js';

const PAGE_HEADERS = {
  'Content-Security-Policy': PAGE_CSP,
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-cache',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** The page's shell; `data` becomes data-* attributes of #app, what the page learns from the server without asking the API. */
function shell(path: string, title: string, data: Record<string, string> = {}): string {
  const attrs = Object.entries(data)
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · auth-system</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<main id="app" data-page="${path.slice(1)}"${attrs}><noscript>This page needs JavaScript.</noscript></main>
</body>
</html>
`;
}

// The console's permission matrix greys out what guest can never hold; the browser app imports no server code to know it.
const CONSOLE_DATA = { 'guest-may-hold': [...GUEST_ALLOWED].join(' ') };

// In the OpenAPI document too (every route is), as HTML, outside the API's security.
const page = (operationId: string, summary: string, responses: Record<string, object>) =>
  describeRoute({ operationId, summary, tags: ['pages'], security: [], 'x-permission': [], responses } as Parameters<
    typeof describeRoute
  >[0]);

export const webRoutes = (opts: { setupOpen: () => Promise<boolean> }) => {
  const app = new Hono();
  for (const [path, { title }] of Object.entries(hostedPages())) {
    const html = shell(path, title, path === '/console' ? CONSOLE_DATA : {});
    // /console says whether first-run setup is open (one indexed query), so the page need not probe the API.
    const firstRun = path === '/console' ? shell(path, title, { ...CONSOLE_DATA, 'first-run': 'open' }) : html;
    const doc = page(`pages.${path.slice(1).replace(/-/g, '_')}`, `Hosted page: ${title}`, { 200: { description: 'HTML' } });
    app.get(path, doc, async (c) => c.html(path === '/console' && (await opts.setupOpen()) ? firstRun : html, 200, PAGE_HEADERS));
  }
  app.get(
    '/assets/:file',
    page('pages.asset', "The hosted pages' script (app.js) and stylesheet (app.css)", {
      200: { description: 'JavaScript or CSS' },
      304: { description: 'Not modified (ETag)' },
      404: { description: "Not one of the pages' files (an HTML error page, like every error of the pages)" },
    }),
    async (c) => {
      const name = c.req.param('file');
      const asset = (await webAssets()).get(name);
      if (!asset) problem('not_found', `No asset ${name}`);
      const headers = { 'Content-Type': asset.type, ETag: asset.etag, 'Cache-Control': 'no-cache' };
      if (requestHeader(c, 'if-none-match') === asset.etag) return c.body(null, 304, headers);
      return c.body(asset.body, 200, headers);
    },
  );
  return app;
};
