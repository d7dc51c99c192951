// The provider's browser endpoints: /oauth2/authorize, the consent page and
// RP-initiated logout. A browser, not a client, is on the other end: answers
// are redirects or HTML pages (never the surface's JSON errors, a user would
// see them), never cached, and every form that changes something is checked
// for the service's own Origin and the browser session's CSRF token.
import { type Context, Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import {
  browserCookieHeader,
  browserCookieName,
  type BrowserSession,
  csrfTokenMatches,
  csrfTokenOf,
  isSameOrigin,
  loadBrowserSession,
  readCookie,
} from '../../access/browser-session.js';
import { requestHeader, setResponseHeader } from '../../lib/node-fast-path.js';
import { described, oauthRoute } from './route-doc.js';
import { answerConsent, authorize, type AuthorizeOutcome, consentPrompt } from '../../provider/authorize.js';
import { confirmLogout, type LogoutOutcome, logoutRequest } from '../../provider/logout.js';
import type { OAuthEnv } from './env.js';
import { toOAuthError } from './errors.js';
import { consentPage, errorPage, logoutConfirmPage, pageHeaders, signedOutPage } from './provider-pages.js';

/** A browser endpoint's declaration: in the OpenAPI document (HTML or a redirect, no API security) and in the access log. */
const browserEndpoint = (action: string, summary: string, responses: Record<string, string>) =>
  oauthRoute({
    action,
    summary,
    description: 'A browser endpoint of the OpenID provider: it answers with a redirect or an HTML page.',
    responses: described(responses),
  });

const requestIdOf = (c: Context) => (c.get('requestId') as string | undefined) ?? 'unknown';

function showError(c: Context, error: string, description: string, status: number): Response {
  return c.html(errorPage(error, description, requestIdOf(c)), status as 400, pageHeaders());
}

/** 302 after a GET, 303 after a form (so the browser follows with a GET). */
function go(c: Context, location: string): Response {
  return c.body(null, c.req.method === 'POST' ? 303 : 302, { Location: location, 'Cache-Control': 'no-store' });
}

function answer(c: Context, outcome: AuthorizeOutcome): Response {
  return outcome.kind === 'redirect' ? go(c, outcome.location) : showError(c, outcome.error, outcome.description, outcome.status);
}

/** The query's parameters (empty values as if omitted) and the names given more than once. */
function queryOf(c: Context): { params: Record<string, string>; repeated: string[] } {
  const params: Record<string, string> = Object.create(null);
  const repeated: string[] = [];
  const url = c.req.url;
  const q = url.indexOf('?');
  for (const [name, value] of new URLSearchParams(q < 0 ? '' : url.slice(q + 1))) {
    if (value === '') continue;
    if (Object.hasOwn(params, name)) {
      if (!repeated.includes(name)) repeated.push(name);
    } else params[name] = value;
  }
  return { params, repeated };
}

export function authorizeRoutes(svc: AppServices) {
  const cookieName = browserCookieName(svc.config.publicUrl);
  const cookieOf = (c: Context) => readCookie(requestHeader(c, 'cookie'), cookieName);
  const clearCookie = browserCookieHeader(svc.config.publicUrl, '', 0);

  /** The browser session behind a form post from one of the provider's own pages, or null (wrong origin, no session, bad token). */
  async function formSession(c: Context<OAuthEnv>): Promise<BrowserSession | null> {
    if (!isSameOrigin(requestHeader(c, 'origin'), svc.config.publicUrl)) return null;
    const session = await loadBrowserSession(svc.database.db, cookieOf(c), svc.clock());
    return session !== null && csrfTokenMatches(session, c.var.form.csrf_token) ? session : null;
  }
  const refused = (c: Context) =>
    showError(c, 'access_denied', 'This form was not sent from this page, or your session ended; start again', 403);

  function loggedOut(c: Context, outcome: LogoutOutcome): Response {
    if (outcome.kind === 'page') return showError(c, outcome.error, outcome.description, 400);
    if (outcome.kind === 'confirm') {
      const html = logoutConfirmPage({ fields: outcome.fields, csrfToken: csrfTokenOf(outcome.session) });
      return c.html(html, 200, pageHeaders(outcome.redirectUri));
    }
    setResponseHeader(c, 'Set-Cookie', clearCookie);
    if (outcome.location !== null) return go(c, outcome.location);
    return c.html(signedOutPage(), 200, pageHeaders());
  }

  const app = new Hono<OAuthEnv>()
    .get(
      '/authorize',
      browserEndpoint('oauth.authorize', 'Authorization endpoint (OpenID Connect Core 3.1.2)', {
        302: 'To the client (code or error), the login page or the consent page',
        400: 'An HTML error page: unknown client or unregistered redirect_uri',
      }),
      async (c) => {
        const { params, repeated } = queryOf(c);
        return answer(c, await authorize(svc, params, repeated, cookieOf(c)));
      },
    )
    .post(
      '/authorize',
      browserEndpoint('oauth.authorize_post', 'Authorization endpoint, form post: answered with the same request as a GET', {
        303: 'The same request as a GET (so the SameSite=Lax browser session comes along)',
      }),
      (c) => go(c, `${svc.config.publicUrl}/oauth2/authorize?${new URLSearchParams({ ...c.var.form })}`),
    )
    .get(
      '/consent',
      browserEndpoint('oauth.consent', 'The consent page: the client, the scopes it asks, Allow and Deny', {
        200: 'The consent page (HTML)',
        302: 'Back to the authorization when this browser is not the one asked',
        400: 'An HTML error page: the request expired or was answered',
      }),
      async (c) => {
        const id = c.req.query('interaction') ?? '';
        const prompt = await consentPrompt(svc, id, cookieOf(c));
        if (prompt.kind !== 'prompt') return answer(c, prompt);
        const html = consentPage({
          clientName: prompt.client.name,
          scopes: prompt.request.scopes,
          interaction: id,
          csrfToken: csrfTokenOf(prompt.session),
        });
        return c.html(html, 200, pageHeaders(prompt.request.redirectUri));
      },
    )
    .post(
      '/consent',
      browserEndpoint('oauth.consent_answer', "The consent page's answer: Allow (a code) or Deny (access_denied)", {
        303: 'To the client with a code, or with access_denied',
        403: 'An HTML error page: another origin, no session or a wrong CSRF token',
      }),
      async (c) => {
        const session = await formSession(c);
        if (!session) return refused(c);
        c.set('auditActor', session.userId);
        const { decision, interaction } = c.var.form;
        if (decision !== 'allow' && decision !== 'deny') return showError(c, 'invalid_request', 'Choose Allow or Deny', 400);
        return answer(c, await answerConsent(svc, interaction ?? '', session, decision === 'allow'));
      },
    )
    .on(
      ['GET', 'POST'],
      '/logout',
      browserEndpoint('oauth.logout', 'RP-Initiated Logout 1.0', {
        200: 'Signed out, or a page asking the user to confirm (HTML)',
        302: 'Signed out, back to a registered post_logout_redirect_uri',
      }),
      async (c) => {
        const params = c.req.method === 'POST' ? c.var.form : queryOf(c).params;
        return loggedOut(c, await logoutRequest(svc, params, cookieOf(c)));
      },
    )
    .post(
      '/logout/confirm',
      browserEndpoint('oauth.logout_confirm', "The logout page's Sign out button", {
        200: 'Signed out (HTML)',
        303: 'Signed out, back to a registered post_logout_redirect_uri',
        403: 'An HTML error page: another origin, no session or a wrong CSRF token',
      }),
      async (c) => {
        const session = await formSession(c);
        if (!session) return refused(c);
        c.set('auditActor', session.userId);
        return loggedOut(c, await confirmLogout(svc, c.var.form, session));
      },
    );
  // A user is looking at these: even an unexpected failure is a page, not JSON.
  app.onError((err, c) => {
    const e = toOAuthError(err);
    if (e.status >= 500)
      svc.logger.error({ requestId: requestIdOf(c), method: c.req.method, route: c.req.routePath, err }, 'unhandled error');
    return showError(c, e.error, e.description, e.status);
  });
  return app;
}
