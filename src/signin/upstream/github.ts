// GitHub (and GitHub Enterprise Server) as an upstream: OAuth 2.0, not OpenID
// Connect. No discovery and no ID token: the endpoints are fixed paths under the
// web origin, and who signed in is read from the REST API (`/user`, `/user/emails`)
// with the access token. openid-client runs the authorization-code flow (state,
// PKCE S256, the token request and its checks) from hand-built metadata.
//
// Client authentication is client_secret_post: it is what GitHub documents for
// `POST /login/oauth/access_token` (client_id and client_secret in the form body),
// on github.com and on every Enterprise Server version alike.
import * as client from 'openid-client';
import { z } from 'zod';
import type { AppServices } from '../../deps.js';
import { emailSchema, nameSchema } from '../../lib/schemas.js';
import type { UpstreamProfile } from './profile.js';
import type { UpstreamProvider } from './providers.js';
import { ExternalSignInError, type UpstreamStrategy } from './strategy.js';

/** What a GitHub sign-in asks for when the provider names no scopes: the profile and the email addresses (read-only). */
export const GITHUB_DEFAULT_SCOPES = ['read:user', 'user:email'];

/** The REST API version the requests are written against (GitHub answers it for years after a newer one ships). */
const API_VERSION = '2022-11-28';
const USER_AGENT = 'auth-system';

export type GithubStrategyOptions = {
  /** In production only https URLs are requested; outside it an http:// GitHub URL (a test server) is allowed. */
  production: boolean;
  /** Each request to GitHub gives up after this long (default 10 s): then the sign-in is `upstream_unavailable`. */
  timeoutMs?: number;
};

// GitHub's answers: only the fields used, everything else ignored (GitHub adds fields freely).
const GithubUser = z.object({
  id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  login: z.string().min(1).max(255),
  name: z.string().nullish(),
  /** The public email (null unless the user chose one): a fallback when /user/emails may not be read. */
  email: z.string().nullish(),
});
const GithubEmail = z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() });

const trimSlash = (url: string) => url.replace(/\/+$/, '');

/** The strategy as the registry makes it, once per app. */
export const githubStrategy = (svc: Pick<AppServices, 'config'>): UpstreamStrategy =>
  createGithubStrategy({ production: svc.config.production });

/**
 * The strategy for providers of type `github`. `production` is config.production:
 * the only thing it decides is whether http:// URLs may be requested.
 */
export function createGithubStrategy(options: GithubStrategyOptions): UpstreamStrategy {
  const timeoutSeconds = Math.max(1, Math.ceil((options.timeoutMs ?? 10_000) / 1000));

  function configuration(provider: UpstreamProvider): client.Configuration {
    const web = trimSlash(provider.githubUrl);
    const config = new client.Configuration(
      {
        issuer: web,
        authorization_endpoint: `${web}/login/oauth/authorize`,
        token_endpoint: `${web}/login/oauth/access_token`,
      },
      provider.clientId,
      undefined,
      provider.clientSecret === null ? client.None() : client.ClientSecretPost(provider.clientSecret),
    );
    config.timeout = timeoutSeconds;
    const insecure = [web, provider.githubApiUrl].some((u) => u.startsWith('http:'));
    if (insecure) {
      if (options.production)
        throw new ExternalSignInError('upstream_unavailable', 'This sign-in method is not available.', 'http:// GitHub URL in production');
      client.allowInsecureRequests(config);
    }
    return config;
  }

  async function api(config: client.Configuration, accessToken: string, url: string): Promise<Response> {
    const headers = new Headers({ accept: 'application/vnd.github+json', 'x-github-api-version': API_VERSION, 'user-agent': USER_AGENT });
    try {
      return await client.fetchProtectedResource(config, accessToken, new URL(url), 'GET', undefined, headers);
    } catch (err) {
      throw asSignInError(err, `GET ${new URL(url).pathname}`);
    }
  }

  async function json(response: Response, what: string): Promise<unknown> {
    if (response.status >= 500) throw unavailable(`${what}: HTTP ${response.status}`);
    if (response.status !== 200) throw invalid(`${what}: HTTP ${response.status}`);
    try {
      return await response.json();
    } catch {
      throw invalid(`${what}: not JSON`);
    }
  }

  return {
    async authorizationUrl(provider, request) {
      const config = configuration(provider);
      // No nonce: GitHub issues no ID token to bind it to; state and PKCE protect the flow.
      return client.buildAuthorizationUrl(config, {
        redirect_uri: request.redirectUri,
        scope: (provider.scopes.length > 0 ? provider.scopes : GITHUB_DEFAULT_SCOPES).join(' '),
        state: request.state,
        code_challenge: request.codeChallenge,
        code_challenge_method: 'S256',
      });
    },

    async finish(provider, callback) {
      const config = configuration(provider);
      // The token request's redirect_uri must be the one the flow started with, whatever
      // origin the callback was seen at (a proxy in front): only the query is GitHub's.
      const current = new URL(callback.redirectUri);
      current.search = callback.url.search;
      let accessToken: string;
      try {
        const tokens = await client.authorizationCodeGrant(config, current, {
          expectedState: callback.state,
          pkceCodeVerifier: callback.codeVerifier,
          idTokenExpected: false,
        });
        accessToken = tokens.access_token;
      } catch (err) {
        throw asSignInError(err, 'token endpoint');
      }

      const userBody = GithubUser.safeParse(
        await json(await api(config, accessToken, `${trimSlash(provider.githubApiUrl)}/user`), 'GET /user'),
      );
      if (!userBody.success) throw invalid('GET /user: not a GitHub user');
      const user = userBody.data;

      const emails = await readEmails(config, accessToken, provider);
      let email: string | null = null;
      let emailVerified = false;
      const primary = emails?.find((e) => e.primary);
      if (primary) {
        email = primary.email;
        emailVerified = primary.verified;
      } else if (emails === null && user.email) {
        // /user/emails could not be read (the scope was not granted): the public
        // email is shown, but nothing here says it is verified.
        email = user.email;
      }
      const parsedEmail = email === null ? null : emailSchema.safeParse(email);
      const name = nameSchema.safeParse(user.name ?? '');
      return {
        // The numeric id: a login can be renamed (and then taken by someone else), an email changed.
        subject: String(user.id),
        email: parsedEmail?.success ? parsedEmail.data : null,
        emailVerified: parsedEmail?.success === true && emailVerified,
        name: name.success ? name.data : user.login,
      } satisfies UpstreamProfile;
    },
  };

  /** The user's addresses; null when GitHub does not let this token read them (403/404: no `user:email` scope). */
  async function readEmails(config: client.Configuration, accessToken: string, provider: UpstreamProvider) {
    const response = await api(config, accessToken, `${trimSlash(provider.githubApiUrl)}/user/emails?per_page=100`);
    if (response.status === 403 || response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    const body = await json(response, 'GET /user/emails');
    if (!Array.isArray(body)) throw invalid('GET /user/emails: not a list');
    return body.flatMap((entry) => {
      const parsed = GithubEmail.safeParse(entry);
      return parsed.success ? [parsed.data] : [];
    });
  }
}

const invalid = (detail: string) =>
  new ExternalSignInError('upstream_invalid_response', 'GitHub gave an answer that could not be used. Please try again.', detail);
const unavailable = (detail: string) =>
  new ExternalSignInError('upstream_unavailable', 'GitHub could not be reached. Please try again in a moment.', detail);

/**
 * openid-client's failures as the flow's stable codes. The detail (for the log)
 * names the step and GitHub's error code at most: never a body, token or code.
 */
function asSignInError(err: unknown, step: string): ExternalSignInError {
  if (err instanceof ExternalSignInError) return err;
  if (err instanceof client.AuthorizationResponseError) {
    const code = /^[a-z_]{1,64}$/.test(err.error) ? err.error : 'error';
    if (code === 'access_denied')
      return new ExternalSignInError('access_denied', 'The sign-in was cancelled at GitHub.', `${step}: access_denied`);
    return invalid(`${step}: authorization error ${code}`);
  }
  if (err instanceof client.ResponseBodyError) {
    const code = /^[a-z_]{1,64}$/.test(err.error) ? err.error : 'error';
    return err.status >= 500 ? unavailable(`${step}: HTTP ${err.status} ${code}`) : invalid(`${step}: HTTP ${err.status} ${code}`);
  }
  if (err instanceof client.WWWAuthenticateChallengeError) return invalid(`${step}: HTTP ${err.status} challenge`);
  if (err instanceof client.ClientError) {
    const cause: unknown = err.cause;
    if (err.code === 'OAUTH_TIMEOUT') return unavailable(`${step}: no answer in time`);
    if (cause instanceof Response) {
      return cause.status >= 500
        ? unavailable(`${step}: HTTP ${cause.status}`)
        : invalid(`${step}: HTTP ${cause.status} ${err.code ?? ''}`);
    }
    // GitHub answers a refused code exchange with 200 and {"error": "bad_verification_code"}.
    const body = (cause as { cause?: { body?: { error?: unknown } } } | undefined)?.cause?.body;
    const ghError = typeof body?.error === 'string' && /^[a-z_]{1,64}$/.test(body.error) ? ` ${body.error}` : '';
    return invalid(`${step}: ${err.code ?? 'invalid response'}${ghError}`);
  }
  // fetch failed (refused, reset, DNS) or the timeout's abort.
  if (err instanceof TypeError || (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')))
    return unavailable(`${step}: ${err.name}`);
  return invalid(`${step}: unexpected failure`);
}
