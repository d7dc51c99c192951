// The pages surface: the hosted pages (/login … /console) and their assets.
// Static shells that call the API like any frontend; the one credential read
// here is the browser-session cookie (browser-session.routes.ts). Errors are
// small HTML pages under the pages' own policy.
import { Hono, type Context } from 'hono';
import type { AppServices } from '../../deps.js';
import type { Logger } from '../../lib/logger.js';
import { PAGE_CSP } from '../../lib/html-csp.js';
import { ERROR_CODES } from '../../lib/problem.js';
import { toProblem } from '../../middleware/problem.js';
import { isSetupOpen } from '../../modules/setup/setup.service.js';
import { browserSessionRoutes } from './browser-session.routes.js';
import { webRoutes } from './pages.routes.js';

/**
 * Whether first-run setup is open, asked of the database until the answer is
 * no: once an admin exists there always is one (the last admin cannot go), so
 * /console page loads stop costing a query.
 */
function setupOpenUntilClosed(svc: AppServices): () => Promise<boolean> {
  let closed = false;
  return async () => {
    if (closed) return false;
    closed = !(await isSetupOpen(svc));
    return !closed;
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** Errors as a page: the status and its title, the request id to quote; never the error's own message. */
export function pageErrorHandler(logger: Logger) {
  return (err: unknown, c: Context) => {
    const p = toProblem(err);
    const requestId = (c.get('requestId') as string | undefined) ?? 'unknown';
    if (p.status >= 500) {
      logger.error(
        { requestId, method: c.req.method, route: c.req.routePath, err },
        p.code === 'service_unavailable' ? 'dependency unavailable' : 'unhandled error',
      );
    }
    const title = escapeHtml(ERROR_CODES[p.code].title);
    const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${title} · auth-system</title></head>
<body><main><h1>${title}</h1><p>Request id: <code>${escapeHtml(requestId)}</code></p></main></body>
</html>
`;
    return c.html(html, p.status as 400, {
      'Content-Security-Policy': PAGE_CSP,
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
      'X-Request-Id': requestId,
      ...(p.extra.headers ?? {}),
    });
  };
}

export function pagesSurface(svc: AppServices) {
  const surface = new Hono<{ Variables: { requestId: string } }>()
    .route('/', webRoutes({ setupOpen: setupOpenUntilClosed(svc) }))
    .route('/', browserSessionRoutes(svc));
  surface.onError(pageErrorHandler(svc.logger));
  return surface;
}
