// The browser session of the hosted pages (POST /session, POST /session/end):
// after signing in, a page trades its access token for the HttpOnly cookie
// the provider's browser endpoints trust; signing out ends it. Only pages of
// this origin may ask (Origin), and ending a live one needs its CSRF token or
// a token of the same session, so another site can neither set nor end it.
import { Hono, type Context } from 'hono';
import { describeRoute } from 'hono-openapi';
import {
  browserCookieHeader,
  browserCookieName,
  checkCsrf,
  loadBrowserSession,
  readCookie,
  requireSameOrigin,
  startBrowserSession,
} from '../../access/browser-session.js';
import type { AppServices } from '../../deps.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { problem } from '../../lib/problem.js';
import { limitBody } from '../../middleware/body.js';
import { tokenPairForSession } from '../../modules/auth/auth.service.js';
import { revokeSessions } from '../../modules/sessions/sessions.service.js';
import { type AccessClaims, InvalidTokenError } from '../../security/access-tokens.js';

const BEARER = /^Bearer +(\S+) *$/i;
// Nothing here is cached, by the browser or in between.
const NO_STORE = { 'Cache-Control': 'no-store' };

const doc = (operationId: string, summary: string, description: string, responses: Record<string, object>) =>
  describeRoute({ operationId, summary, description, tags: ['pages'], security: [], 'x-permission': [], responses } as Parameters<
    typeof describeRoute
  >[0]);

/** The claims of the request's Bearer token (one of the pages' token pair), or null without one; a bad one is 401. */
async function bearerClaims(svc: AppServices, c: Context): Promise<AccessClaims | null> {
  const header = requestHeader(c, 'authorization');
  if (header === undefined) return null;
  const token = BEARER.exec(header)?.[1];
  try {
    if (token === undefined) throw new InvalidTokenError('not a Bearer token');
    const claims = await svc.verifyToken(token);
    // A token the provider issued to another app never makes a browser session here.
    if (claims.clientId !== undefined) throw new InvalidTokenError('not a token of the pages');
    return claims;
  } catch (err) {
    if (!(err instanceof InvalidTokenError)) throw err;
    return problem('invalid_token', 'The access token is invalid or expired');
  }
}

/** The CSRF token a form or a script sent: the X-CSRF-Token header, or a form body's csrf_token. */
async function submittedCsrf(c: Context): Promise<string | undefined> {
  const header = requestHeader(c, 'x-csrf-token');
  if (header !== undefined) return header;
  const type = requestHeader(c, 'content-type') ?? '';
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)) return undefined;
  try {
    const field = (await c.req.parseBody())['csrf_token'];
    return typeof field === 'string' ? field : undefined;
  } catch {
    return undefined;
  }
}

export const browserSessionRoutes = (svc: AppServices) => {
  const { publicUrl } = svc.config;
  return new Hono()
    .use('/session/*', limitBody(svc.config.bodyLimitBytes))
    .use('/session', limitBody(svc.config.bodyLimitBytes))
    .post(
      '/session',
      doc(
        'pages.session.start',
        'Start the browser session of a sign-in (the hosted pages call it after signing in)',
        "With `Authorization: Bearer <access token>` of the pages' token pair and this service's own `Origin`: sets the HttpOnly, SameSite=Lax browser-session cookie for that token's session (`sid`), living as long as the session. A repeat call gives a new cookie and voids the previous one.",
        {
          204: { description: 'The cookie is set' },
          401: { description: 'No token, or a token that is invalid, expired or of an ended session (an HTML page)' },
          403: { description: 'Not sent by a page of this service (Origin)' },
        },
      ),
      async (c) => {
        requireSameOrigin(c, publicUrl);
        const claims = await bearerClaims(svc, c);
        if (!claims) problem('unauthenticated', 'Send the access token of the sign-in');
        const now = svc.clock();
        const started = await startBrowserSession(svc.database.db, claims.sid, claims.sub, now);
        if (!started) problem('invalid_token', 'The session has ended');
        const maxAge = (started.expiresAt.getTime() - now) / 1000;
        return c.body(null, 204, { ...NO_STORE, 'Set-Cookie': browserCookieHeader(publicUrl, started.value, maxAge) });
      },
    )
    .post(
      '/session/tokens',
      doc(
        'pages.session.tokens',
        'A token pair for the browser session (the hosted pages call it after a sign-in that ended in the browser)',
        "From this service's own `Origin`, with the browser-session cookie: the same JSON as `POST /auth/login` (`accessToken`, `refreshToken`, `tokenType`, `expiresIn`) for that session: a new refresh token of the same session, and an access token whose `amr` says how the session signed in. This is how `/account` loads after signing in with an identity provider, and in a new tab.",
        {
          200: { description: 'The token pair (JSON)' },
          401: { description: 'No live browser session (an HTML page)' },
          403: { description: 'Not sent by a page of this service (Origin)' },
        },
      ),
      async (c) => {
        requireSameOrigin(c, publicUrl);
        const session = await loadBrowserSession(
          svc.database.db,
          readCookie(requestHeader(c, 'cookie'), browserCookieName(publicUrl)),
          svc.clock(),
        );
        const pair = session === null ? null : await tokenPairForSession(svc, session);
        if (pair === null) problem('unauthenticated', 'Sign in first: this browser has no live session');
        return c.json(pair, 200, { ...NO_STORE, Pragma: 'no-cache' });
      },
    )
    .post(
      '/session/end',
      doc(
        'pages.session.end',
        'Sign out of the browser session: end its session and clear the cookie',
        "From this service's own `Origin`, with the session's CSRF token (`X-CSRF-Token` header or a form's `csrf_token`) or an access token of the same session (`Authorization: Bearer`). Ends the session like a logout (its tokens stop working on the next request). Without a live browser session it only clears the cookie.",
        {
          204: { description: 'Signed out; the cookie is cleared' },
          401: { description: 'An access token that is invalid or expired (an HTML page)' },
          403: { description: 'Not sent by a page of this service, or without proof that it comes from this session' },
        },
      ),
      async (c) => {
        requireSameOrigin(c, publicUrl);
        const now = svc.clock();
        const session = await loadBrowserSession(
          svc.database.db,
          readCookie(requestHeader(c, 'cookie'), browserCookieName(publicUrl)),
          now,
        );
        if (session) {
          const claims = await bearerClaims(svc, c);
          if (claims?.sid !== session.sessionId) checkCsrf(session, await submittedCsrf(c));
          await svc.tx((tx, emit) => revokeSessions(tx, emit, { sessionId: session.sessionId }, 'logout', new Date(now)));
        }
        return c.body(null, 204, { ...NO_STORE, 'Set-Cookie': browserCookieHeader(publicUrl, '', 0) });
      },
    );
};
