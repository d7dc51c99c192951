// Sign-in with an upstream identity provider, in the browser:
// GET /auth/external/:provider starts it (state, nonce and PKCE kept
// server-side, the flow bound to this browser by a cookie) and sends the
// browser to the provider; GET /auth/external/:provider/callback checks the
// answer (signin/upstream/flow.ts and the provider's strategy), applies the
// linking rules (signin/upstream/linking.ts) and the sign-in rules (admit:
// the MFA step, EMAIL_VERIFICATION), then starts the browser session and
// goes on to `next` (which may resume an OpenID authorization). Every other
// end is a hosted page with the stable code beside the words.
import { type Context, Hono } from 'hono';
import {
  browserCookieHeader,
  browserCookieName,
  loadBrowserSession,
  readCookie,
  startBrowserSession,
} from '../../access/browser-session.js';
import type { AppServices } from '../../deps.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { Problem } from '../../lib/problem.js';
import { described, oauthRoute } from './route-doc.js';
import { startSignedInSession } from '../../modules/auth/auth.service.js';
import { mayMail, queueVerificationMail } from '../../modules/auth/email.service.js';
import { revokeSessions } from '../../modules/sessions/sessions.service.js';
import { createUserWithRoles } from '../../modules/users/users.create.js';
import { DEFAULT_USER_ROLE } from '../../security/permissions.js';
import { admit } from '../../signin/rules.js';
import {
  DEFAULT_NEXT,
  FLOW_STATE,
  finishFlow,
  flowCookieHeader,
  flowCookieName,
  safeNext,
  startFlow,
  takeFlow,
} from '../../signin/upstream/flow.js';
import { type LinkingEffects, resolveIdentity } from '../../signin/upstream/linking.js';
import { enabledUpstream } from '../../signin/upstream/providers.js';
import { upstreamStrategies } from '../../signin/upstream/registry.js';
import { type ExternalErrorCode, ExternalSignInError } from '../../signin/upstream/strategy.js';
import type { OAuthEnv } from './env.js';
import { externalErrorPage, pageHeaders } from './provider-pages.js';

/** The HTTP status of each hosted error page. */
const STATUS: Record<ExternalErrorCode, number> = {
  idp_not_found: 404,
  identity_not_linked: 403,
  identity_in_use: 409,
  reauthentication_required: 403,
  unauthenticated: 401,
  email_not_verified: 403,
  registration_closed: 403,
  invalid_state: 400,
  access_denied: 403,
  upstream_invalid_response: 400,
  upstream_unavailable: 502,
};

const PROVIDER_ID = /^[A-Za-z0-9._-]{1,64}$/;
const PROVIDER_ERROR = /^[a-z_]{1,64}$/;
const NOT_FOUND = 'There is no identity provider by this name here, or it is turned off.';

const browserEndpoint = (action: string, summary: string, description: string, responses: Record<string, string>) =>
  oauthRoute({
    action,
    summary,
    description,
    parameters: [{ name: 'provider', in: 'path', required: true, schema: { type: 'string' }, description: 'The identity provider’s id' }],
    responses: described(responses),
  });

/** The query's first value of each parameter (empty values as if omitted). */
function queryOf(c: Context): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  const url = c.req.url;
  const q = url.indexOf('?');
  for (const [k, v] of new URLSearchParams(q < 0 ? '' : url.slice(q + 1))) if (v !== '' && !Object.hasOwn(out, k)) out[k] = v;
  return out;
}

export function externalRoutes(svc: AppServices) {
  const { publicUrl } = svc.config;
  const strategies = upstreamStrategies(svc);
  const sessionCookie = browserCookieName(publicUrl);
  /** Clears the cookie of the flow the request's state names (nothing to clear without a well-formed state). */
  const clearFlowCookie = (state: string | undefined): string[] =>
    state !== undefined && FLOW_STATE.test(state) ? [flowCookieHeader(publicUrl, state, '', 0)] : [];

  const effects: LinkingEffects = {
    createUser: async (tx, emit, u) => {
      const user = await createUserWithRoles(
        tx,
        {
          email: u.email,
          name: u.name,
          passwordHash: null,
          at: u.at,
          ...(u.emailVerifiedAt ? { emailVerifiedAt: u.emailVerifiedAt } : {}),
        },
        [DEFAULT_USER_ROLE],
      );
      // As a registration does: an address the provider did not vouch for gets its link (within the mail limits).
      if (
        u.emailVerifiedAt === null &&
        svc.config.emailVerification !== 'off' &&
        (await mayMail(svc, 'verify_email', u.email, { ip: u.ip }))
      ) {
        await queueVerificationMail(tx, emit, svc, user, u.ip, u.at);
      }
      return user;
    },
    endAllSessions: async (tx, emit, userId, now) => {
      await revokeSessions(tx, emit, { userId }, 'email_claimed', now);
    },
  };

  const requestIdOf = (c: Context) => (c.get('requestId') as string | undefined) ?? 'unknown';

  /** A hosted error page; the flow cookie goes with it (every end of a callback clears it). */
  function showError(
    c: Context<OAuthEnv>,
    err: ExternalSignInError,
    opts: { link?: boolean; providerError?: string; state?: string | undefined } = {},
  ): Response {
    if (err.detail !== undefined)
      svc.logger.info({ requestId: requestIdOf(c), code: err.code, detail: err.detail }, 'external sign-in refused');
    c.set('auditDetail', `external_login_failed: ${err.code}`);
    const back =
      err.code === 'reauthentication_required' || err.code === 'unauthenticated'
        ? { href: `/login?next=${encodeURIComponent(DEFAULT_NEXT)}`, label: 'Sign in again' }
        : opts.link
          ? { href: DEFAULT_NEXT, label: 'Back to your account' }
          : { href: '/login', label: 'Back to sign-in' };
    const html = externalErrorPage({
      code: err.code,
      description: err.description,
      requestId: requestIdOf(c),
      back,
      ...(opts.providerError ? { providerError: opts.providerError } : {}),
    });
    const res = c.html(html, STATUS[err.code] as 400, pageHeaders());
    // A flow not found keeps its cookie: a forged callback cannot end the sign-in this browser has under way.
    if (err.code !== 'invalid_state') for (const cookie of clearFlowCookie(opts.state)) res.headers.append('Set-Cookie', cookie);
    return res;
  }

  const redirect = (location: string, cookies: string[]): Response => {
    const headers = new Headers({ Location: location, 'Cache-Control': 'no-store' });
    for (const cookie of cookies) headers.append('Set-Cookie', cookie);
    return new Response(null, { status: 303, headers });
  };

  const app = new Hono<OAuthEnv>()
    .get(
      '/:provider',
      browserEndpoint(
        'auth.external.start',
        'Sign in with an identity provider: the browser goes to the provider',
        '`?next=` a same-site path to go to once signed in (default `/account`; `/oauth2/authorize?interaction=…` resumes an authorization). `?link=1` links the provider to the account of the signed-in browser session instead (its sign-in must be within REAUTH_MAX_AGE_SECONDS). State, nonce and a PKCE verifier are kept server-side (10 minutes, single use); a short-lived HttpOnly cookie under /auth/external binds the flow to this browser.',
        {
          302: 'To the identity provider',
          401: 'An HTML page: linking needs a signed-in browser session (unauthenticated)',
          403: 'An HTML page: linking needs a recent sign-in (reauthentication_required)',
          404: 'An HTML page: no enabled provider by this id (idp_not_found)',
          502: 'An HTML page: the provider could not be reached (upstream_unavailable)',
        },
      ),
      async (c) => {
        const id = c.req.param('provider');
        const query = queryOf(c);
        const linking = query.link === '1';
        const provider = PROVIDER_ID.test(id) ? await enabledUpstream(svc, id) : null;
        const strategy = provider ? strategies[provider.type] : undefined;
        if (!provider || !strategy) return showError(c, new ExternalSignInError('idp_not_found', NOT_FOUND), { link: linking });
        let link: { userId: string; sessionId: string } | undefined;
        if (linking) {
          const now = svc.clock();
          const session = await loadBrowserSession(svc.database.db, readCookie(requestHeader(c, 'cookie'), sessionCookie), now);
          if (!session) {
            return showError(c, new ExternalSignInError('unauthenticated', `Sign in to your account first, then link ${provider.name}.`), {
              link: true,
            });
          }
          c.set('auditActor', session.userId);
          if (now - session.authTime.getTime() > svc.config.reauthMaxAgeSeconds * 1000) {
            return showError(
              c,
              new ExternalSignInError(
                'reauthentication_required',
                `To link ${provider.name}, sign in again first: your sign-in is not recent enough.`,
              ),
              { link: true },
            );
          }
          link = { userId: session.userId, sessionId: session.sessionId };
        }
        try {
          const { location, state, cookie } = await startFlow(svc, strategy, provider, {
            next: safeNext(query.next),
            ...(link ? { link } : {}),
          });
          return c.body(null, 302, {
            Location: location.href,
            'Cache-Control': 'no-store',
            'Set-Cookie': flowCookieHeader(publicUrl, state, cookie, 600),
          });
        } catch (err) {
          if (err instanceof ExternalSignInError) return showError(c, err, { link: linking });
          throw err;
        }
      },
    )
    .get(
      '/:provider/callback',
      browserEndpoint(
        'auth.external.callback',
        'The identity provider’s redirect back: signed in, linked, or an error page',
        'Checks the flow (state known, unused, unexpired, of this provider, from the browser that started it), then what the specs ask of the answer (RFC 9207 `iss`, the code exchange with PKCE, the ID token’s signature, `iss`, `aud`, `nonce`, `exp`), then the linking rules. Signed in: the browser session is set and the browser goes to `next`; a user with a second factor goes to `/login?next=…#mfa=<mfaToken>&methods=…` to finish with POST /auth/mfa/verify. Every other end is an HTML page with a stable code.',
        {
          303: 'Signed in or linked: to `next`; or to the login page for the MFA step',
          400: 'An HTML page: invalid_state, upstream_invalid_response (the answer failed a check, or the provider refused the code)',
          401: 'An HTML page: unauthenticated (a link flow whose session ended)',
          403: 'An HTML page: access_denied, identity_not_linked, email_not_verified, registration_closed',
          404: 'An HTML page: idp_not_found (the provider was disabled meanwhile)',
          409: 'An HTML page: identity_in_use',
          502: 'An HTML page: upstream_unavailable',
        },
      ),
      async (c) => {
        const id = c.req.param('provider');
        const query = queryOf(c);
        let linkFlow = false;
        try {
          const cookie =
            query.state === undefined ? undefined : readCookie(requestHeader(c, 'cookie'), flowCookieName(publicUrl, query.state));
          const flow = await takeFlow(svc, id, query.state, cookie);
          linkFlow = flow.link !== undefined;
          if (flow.link) c.set('auditActor', flow.link.userId);
          const provider = await enabledUpstream(svc, id);
          const strategy = provider ? strategies[provider.type] : undefined;
          if (!provider || !strategy) throw new ExternalSignInError('idp_not_found', NOT_FOUND);
          if (query.error !== undefined) {
            const providerError = PROVIDER_ERROR.test(query.error) ? query.error : undefined;
            return showError(
              c,
              new ExternalSignInError(
                'access_denied',
                `The sign-in was cancelled or refused at ${provider.name}.`,
                `provider error ${providerError ?? '(malformed)'}`,
              ),
              { link: linkFlow, state: query.state, ...(providerError ? { providerError } : {}) },
            );
          }
          // The URL as the provider sent the browser to it (PUBLIC_URL's origin, as the redirect_uri was).
          const url = new URL(`${publicUrl}${c.req.path}${c.req.url.includes('?') ? c.req.url.slice(c.req.url.indexOf('?')) : ''}`);
          const profile = await finishFlow(svc, strategy, provider, flow, url, query.state ?? '');
          const now = svc.clock();
          if (flow.link) {
            // The session that asked must still be live, in this browser.
            const session = await loadBrowserSession(svc.database.db, readCookie(requestHeader(c, 'cookie'), sessionCookie), now);
            if (session?.sessionId !== flow.link.sessionId) {
              throw new ExternalSignInError(
                'unauthenticated',
                `Your session ended before ${provider.name} answered: sign in and link it again.`,
              );
            }
          }
          const ip = c.get('clientIp');
          const outcome = await resolveIdentity(svc, effects, provider, profile, flow, ip);
          c.set('auditActor', outcome.user.id);
          if (flow.link) {
            c.set('auditDetail', `identity_linked: ${provider.id}`);
            return redirect(flow.next, clearFlowCookie(query.state));
          }
          let authentication: Awaited<ReturnType<typeof admit>>;
          try {
            authentication = await admit(svc, outcome.user, ['fed']);
          } catch (err) {
            if (err instanceof Problem && err.code === 'mfa_required') {
              const { mfaToken, methods } = err.extra.members as { mfaToken: string; methods: string[] };
              c.set('auditDetail', 'mfa_required');
              const fragment = `mfa=${encodeURIComponent(mfaToken)}&methods=${methods.map(encodeURIComponent).join(',')}`;
              return redirect(`/login?next=${encodeURIComponent(flow.next)}#${fragment}`, clearFlowCookie(query.state));
            }
            if (err instanceof Problem && err.code === 'email_not_verified') {
              throw new ExternalSignInError(
                'email_not_verified',
                'Confirm your email address first: the link is in the mail we sent (or ask for a new one on the sign-in page).',
              );
            }
            throw err;
          }
          const userAgent = requestHeader(c, 'user-agent') ?? '';
          await startSignedInSession(svc, authentication, { ip, userAgent });
          const started = await startBrowserSession(svc.database.db, authentication.sessionId, authentication.userId, svc.clock());
          if (!started) throw new Error('the new session could not become a browser session');
          c.set('auditDetail', `external_login: ${provider.id}`);
          const maxAge = (started.expiresAt.getTime() - svc.clock()) / 1000;
          return redirect(flow.next, [browserCookieHeader(publicUrl, started.value, maxAge), ...clearFlowCookie(query.state)]);
        } catch (err) {
          if (err instanceof ExternalSignInError) return showError(c, err, { link: linkFlow, state: query.state });
          throw err;
        }
      },
    );

  // A user is looking at these: even an unexpected failure is a page, not JSON, and never its message.
  app.onError((err, c) => {
    svc.logger.error({ requestId: requestIdOf(c), method: c.req.method, route: c.req.routePath, err }, 'unhandled error');
    const html = externalErrorPage({
      code: 'internal_error',
      description: 'Something went wrong on our side: try again in a moment.',
      requestId: requestIdOf(c),
      back: { href: '/login', label: 'Back to sign-in' },
    });
    const res = c.html(html, 500, pageHeaders());
    for (const cookie of clearFlowCookie(queryOf(c).state)) res.headers.append('Set-Cookie', cookie);
    return res;
  });
  return app;
}
