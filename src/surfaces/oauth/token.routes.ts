// POST /oauth2/token, GET|POST /oauth2/userinfo, POST /oauth2/revoke and
// POST /oauth2/introspect: the provider's token-side endpoints. Bodies come parsed (c.var.form) and client credentials read
// (c.var.clientCredentials) by the surface; every answer is JSON, never cached.
import { Hono, type Context } from 'hono';
import type { AppServices } from '../../deps.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { oauthRoute } from './route-doc.js';
import { authenticateClient } from '../../provider/clients.js';
import { tokenRequest } from '../../provider/token.js';
import { introspectToken, revokeToken } from '../../provider/revocation.js';
import { userinfo } from '../../provider/userinfo.js';
import { allowCorsFor, type CorsEnv, oauthCors } from './cors.js';
import { oauthError } from './errors.js';
import type { OAuthEnv } from './env.js';

const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const;

/** An OAuth endpoint's declaration: its audit action and OpenAPI operation (its RFC defines the rest). */
const endpoint = (action: string, summary: string, description: string) =>
  oauthRoute({ action, summary, description, responses: { 200: { description: summary } } });

const MAX_TOKEN_LENGTH = 8192;

const tokenParam = (form: Readonly<Record<string, string>>): string => {
  const token = form.token ?? oauthError('invalid_request', 'The parameter token is required');
  return token.length > MAX_TOKEN_LENGTH ? oauthError('invalid_request', 'token is too long') : token;
};

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The access token of a userinfo request: in the Authorization header or (POST) the form, not both (RFC 6750 §2). */
function presentedToken(c: Context<CorsEnv>): string {
  const header = requestHeader(c, 'authorization');
  const inForm = c.get('form').access_token;
  if (header !== undefined && /^bearer /i.test(header)) {
    if (inForm !== undefined) oauthError('invalid_request', 'Send the access token once, not in the header and the body');
    const token = BEARER.exec(header)?.[1];
    return (
      token ??
      oauthError('invalid_token', 'The Bearer credentials are malformed', 401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' })
    );
  }
  if (inForm !== undefined && c.req.method === 'POST') return inForm;
  // RFC 6750 §3.1: no credentials, no error code in the challenge.
  return oauthError('invalid_request', 'An access token is required', 401, { 'WWW-Authenticate': 'Bearer' });
}

/**
 * The token-side endpoints with their per-client CORS (routed first, so its
 * middleware wraps them), for oauthSurface's `endpoints` beside authorize's.
 */
export function tokenRoutes(svc: AppServices): Hono<OAuthEnv> {
  const routes = new Hono<CorsEnv>().route('/', oauthCors(svc)).route('/', tokenEndpoints(svc));
  // Its own context variable (corsOrigins) is set and read within these routes only.
  return routes as unknown as Hono<OAuthEnv>;
}

function tokenEndpoints(svc: AppServices) {
  const userinfoHandler = async (c: Context<CorsEnv>) => {
    const claims = await userinfo(svc, presentedToken(c), (client) => allowCorsFor(c, client));
    return c.json(claims, 200, NO_STORE);
  };
  const userinfoDeclaration = () =>
    endpoint(
      'oauth.userinfo',
      'Claims about the signed-in user',
      'OpenID Connect Core 5.3: a Bearer access token, in the header or the form body.',
    );
  return new Hono<CorsEnv>()
    .post(
      '/token',
      endpoint(
        'oauth.token',
        'Exchange a code or a refresh token',
        "RFC 6749 4.1.3 and 6: a form body; client authentication by the client's method.",
      ),
      async (c) => {
        const client = await authenticateClient(svc, c.get('clientCredentials'));
        allowCorsFor(c, client);
        return c.json(await tokenRequest(svc, client, c.get('form')), 200, NO_STORE);
      },
    )
    .get('/userinfo', userinfoDeclaration(), userinfoHandler)
    .post('/userinfo', userinfoDeclaration(), userinfoHandler)
    .post(
      '/revoke',
      endpoint('oauth.revoke', 'Revoke a refresh or access token', 'RFC 7009: revokes every token of the sign-in the token belongs to.'),
      async (c) => {
        const client = await authenticateClient(svc, c.get('clientCredentials'));
        allowCorsFor(c, client);
        await revokeToken(svc, client, tokenParam(c.get('form')));
        return c.body(null, 200, NO_STORE);
      },
    )
    .post(
      '/introspect',
      endpoint(
        'oauth.introspect',
        'Whether a token is live, and its claims',
        'RFC 7662: for confidential clients, about tokens issued to them or naming them.',
      ),
      async (c) => {
        const client = await authenticateClient(svc, c.get('clientCredentials'));
        allowCorsFor(c, client);
        if (client.type === 'public') {
          oauthError('invalid_client', 'Introspection needs an authenticated (confidential) client', 401, {
            'WWW-Authenticate': 'Basic realm="oauth2"',
          });
        }
        return c.json(await introspectToken(svc, client, tokenParam(c.get('form'))), 200, NO_STORE);
      },
    );
}
