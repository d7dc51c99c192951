// The hosted pages (/login ... /console) and their two assets. Every page is
// the same small HTML shell; the script renders it and talks to the API
// through the project's typed client, like any frontend. A strict CSP: files
// from this origin only, no inline script or style, never framed.
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { PAGE_CSP } from '../../lib/page-policy.js';
import { problem } from '../../lib/problem.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { webAssets } from './assets.js';

export const PAGES = {
  '/login': 'Sign in',
  '/register': 'Create an account',
  '/forgot-password': 'Forgot password',
  '/reset-password': 'Choose a new password',
  '/verify-email': 'Confirm your email',
  '/account': 'Your account',
  '/console': 'Admin console',
} as const;

const PAGE_HEADERS = {
  'Content-Security-Policy': PAGE_CSP,
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-cache',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

function shell(path: keyof typeof PAGES, firstRun = false): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(PAGES[path])} · auth-system</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<main id="app" data-page="${path.slice(1)}"${firstRun ? ' data-first-run="open"' : ''}><noscript>This page needs JavaScript.</noscript></main>
</body>
</html>
`;
}

// In the OpenAPI document too (every route is), as HTML, outside the API's security.
const page = (operationId: string, summary: string, responses: Record<string, object>) =>
  describeRoute({ operationId, summary, tags: ['pages'], security: [], 'x-permission': [], responses } as Parameters<
    typeof describeRoute
  >[0]);

export const webRoutes = (opts: { setupOpen: () => Promise<boolean> }) => {
  const app = new Hono();
  for (const path of Object.keys(PAGES) as (keyof typeof PAGES)[]) {
    const html = shell(path);
    // /console says whether first-run setup is open (one indexed query), so the page need not probe the API.
    const firstRun = path === '/console' ? shell(path, true) : html;
    app.get(
      path,
      page(`pages.${path.slice(1).replace(/-/g, '_')}`, `Hosted page: ${PAGES[path]}`, { 200: { description: 'HTML' } }),
      async (c) => c.html(path === '/console' && (await opts.setupOpen()) ? firstRun : html, 200, PAGE_HEADERS),
    );
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
