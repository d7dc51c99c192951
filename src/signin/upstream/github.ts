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
import { type ExternalErrorCode, ExternalSignInError, type UpstreamStrategy } from './strategy.js';

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

/** No answer GitHub gives is near this size (a token, a user, a list of addresses): a bigger one is refused unread. */
const MAX_BODY_BYTES = 256 * 1024;

/** fetch, with the body read here up to MAX_BODY_BYTES: a server answering without end does not fill the memory. */
const cappedFetch: client.CustomFetch = async (url, options) => {
  const response = await fetch(url, options as RequestInit);
  if (response.body === null) return response;
  if (Number(response.headers.get('content-length') ?? 0) > MAX_BODY_BYTES) {
    await response.body.cancel();
    throw invalid('answer too large');
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    size += read.value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw invalid('answer too large');
    }
    chunks.push(read.value);
  }
  return new Response(Buffer.concat(chunks), { status: response.status, statusText: response.statusText, headers: response.headers });
};

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
    config[client.customFetch] = cappedFetch;
    const insecure = [web, provider.githubApiUrl].some((u) => u.startsWith('http:'));
    if (insecure) {
      if (options.production) throw unavailable('an http:// GitHub URL is not requested in production');
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

  const strategy: UpstreamStrategy = {
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
      // The display name, else the login; neither when it is not a plain line of text (then the flow names the user).
      const name = [user.name, user.login].map((n) => nameSchema.safeParse(n ?? '')).find((n) => n.success);
      return {
        // The numeric id: a login can be renamed (and then taken by someone else), an email changed.
        subject: String(user.id),
        email: parsedEmail?.success ? parsedEmail.data : null,
        emailVerified: parsedEmail?.success === true && emailVerified,
        name: name?.data ?? null,
      } satisfies UpstreamProfile;
    },
  };

  // Every failure, whatever step, as a stable code whose words name the provider as the admin named it.
  return {
    authorizationUrl: (provider, request) => named(provider, () => strategy.authorizationUrl(provider, request)),
    finish: (provider, callback) => named(provider, () => strategy.finish(provider, callback)),
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

// The words are set by named() once the provider is known.
const invalid = (detail: string) => new ExternalSignInError('upstream_invalid_response', '', detail);
const unavailable = (detail: string) => new ExternalSignInError('upstream_unavailable', '', detail);

const WORDS: Partial<Record<ExternalErrorCode, (name: string) => string>> = {
  upstream_invalid_response: (name) => `${name} gave an answer that could not be used: try again, or use another way to sign in.`,
  upstream_unavailable: (name) => `${name} could not be reached: try again in a moment.`,
  access_denied: (name) => `The sign-in was cancelled or refused at ${name}.`,
};

async function named<T>(provider: UpstreamProvider, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const e = asSignInError(err, 'GitHub');
    const words = WORDS[e.code]?.(provider.name) ?? e.description;
    throw new ExternalSignInError(e.code, words, e.detail);
  }
}

/**
 * openid-client's failures as the flow's stable codes. The detail (for the log)
 * names the step and GitHub's error code at most: never a body, token or code.
 */
function asSignInError(err: unknown, step: string): ExternalSignInError {
  if (err instanceof ExternalSignInError) return err;
  if (err instanceof client.AuthorizationResponseError) {
    const code = /^[a-z_]{1,64}$/.test(err.error) ? err.error : 'error';
    if (code === 'access_denied') return new ExternalSignInError('access_denied', '', `${step}: access_denied`);
    return invalid(`${step}: authorization error ${code}`);
  }
  if (err instanceof client.ResponseBodyError) {
    const code = /^[a-z_]{1,64}$/.test(err.error) ? err.error : 'error';
    return err.status >= 500 ? unavailable(`${step}: HTTP ${err.status} ${code}`) : invalid(`${step}: HTTP ${err.status} ${code}`);
  }
  if (err instanceof client.WWWAuthenticateChallengeError) return invalid(`${step}: HTTP ${err.status} challenge`);
  if (err instanceof client.ClientError) {
    const cause: unknown = err.cause;
    if (cause instanceof ExternalSignInError) return cause;
    if (err.code === 'OAUTH_TIMEOUT' || err.code === 'OAUTH_ABORT') return unavailable(`${step}: no answer in time`);
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
