// The OAuth surface's errors: RFC 6749 §5.2's `{ error, error_description }`,
// never cached. Thrown with oauthError(); anything else thrown on the surface
// (a body over the limit, an unreachable database, a bug) is mapped here.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { isDatabaseUnavailable, isSerializationFailure } from '../../db/errors.js';
import type { Logger } from '../../lib/logger.js';
import { Problem } from '../../lib/problem.js';

export { OAuthError, oauthError, type OAuthErrorCode } from '../../lib/oauth-error.js';
import { OAuthError } from '../../lib/oauth-error.js';
import { errorPage, pageHeaders } from './provider-pages.js';

/**
 * The endpoints a browser, not a client, talks to (authorize, consent, logout):
 * they take no client authentication, and their errors are pages, even those of
 * the surface's middleware (a repeated form field, a body over the limit).
 */
export const isBrowserEndpoint = (path: string) => /^\/oauth2\/(authorize|consent|logout(\/confirm)?)$/.test(path);

export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  // The shared body limit throws the API's payload_too_large.
  if (err instanceof Problem && err.status === 413) return new OAuthError('invalid_request', err.message, 413);
  if (err instanceof HTTPException && err.status === 413) return new OAuthError('invalid_request', 'The body is too large', 413);
  if (err instanceof HTTPException && err.status === 400) return new OAuthError('invalid_request', 'The body could not be read');
  if (isDatabaseUnavailable(err)) {
    return new OAuthError('temporarily_unavailable', 'The database is unavailable', 503, { 'Retry-After': '5' });
  }
  // A transaction that lost every one of its serialization retries to concurrent
  // writers: the same request may pass a moment later, so it is no server error.
  if (isSerializationFailure(err)) {
    return new OAuthError('temporarily_unavailable', 'The server is busy; retry the request', 503, { 'Retry-After': '1' });
  }
  return new OAuthError('server_error', 'Something went wrong; the request id identifies it in the logs', 500);
}

export function renderOAuthError(c: Context, e: OAuthError, requestId: string): Response {
  return c.body(JSON.stringify({ error: e.error, error_description: e.description }), e.status as 400, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    'X-Request-Id': requestId,
    ...e.headers,
  });
}

export function oauthErrorHandler(logger: Logger) {
  return (err: unknown, c: Context) => {
    const e = toOAuthError(err);
    const requestId = (c.get('requestId') as string | undefined) ?? 'unknown';
    if (e.status >= 500) {
      logger.error(
        { requestId, method: c.req.method, route: c.req.routePath, err },
        e.error === 'temporarily_unavailable' ? 'dependency unavailable' : 'unhandled error',
      );
    }
    // A page only for what a browser navigates with (GET, a form's POST); a preflight or a PUT gets the JSON error.
    if ((c.req.method === 'GET' || c.req.method === 'POST') && isBrowserEndpoint(c.req.path)) {
      // Never 401 with a Basic challenge to a browser (it would ask the user for a password).
      const status = e.status === 401 ? 400 : e.status;
      const retry = e.headers?.['Retry-After'];
      return c.html(errorPage(e.error, e.description, requestId), status as 400, {
        ...pageHeaders(),
        ...(retry !== undefined ? { 'Retry-After': retry } : {}),
      });
    }
    return renderOAuthError(c, e, requestId);
  };
}
