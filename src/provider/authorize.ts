// The authorization endpoint's decisions (OpenID Connect Core 3.1.2, RFC 6749
// §4.1, RFC 7636, RFC 9207, RFC 9700): check the request, then send the user
// to sign in, to the consent page, or back to the client with a code or an
// error. What can only be shown to the user (an unknown client, a redirect
// URI not registered, a lost interaction) is a page: never a redirect to an
// address the client did not register. The surface turns the outcome into a
// response; nothing here reads HTTP.
import type { AppServices } from '../deps.js';
import type { OAuthErrorCode } from '../lib/oauth-error.js';
import { type BrowserSession, loadBrowserSession } from '../access/browser-session.js';
import { findClient, type OAuthClient } from './clients.js';
import { issueCode } from './codes.js';
import { allowScopes, findGrant, grantCovers } from './grants.js';
import { verifyIdTokenHint } from './jwt.js';
import {
  type AuthorizationRequest,
  endInteraction,
  type Interaction,
  loadInteraction,
  saveInteraction,
  takeInteraction,
} from './interactions.js';
import { resolveScopes, scopeString } from './scopes.js';

export type AuthorizeOutcome =
  /** 302 (303 after a form) to the client, the login page or the consent page. */
  | { kind: 'redirect'; location: string }
  /** An error page: nowhere safe to send the user. */
  | { kind: 'page'; error: OAuthErrorCode; description: string; status: number };

type Svc = Pick<AppServices, 'database' | 'store' | 'clock' | 'config' | 'keyRing' | 'tx'>;

const PROMPTS = new Set(['none', 'login', 'consent', 'select_account']);
const CODE_CHALLENGE = /^[A-Za-z0-9._~-]{43,128}$/;
const LOOPBACK = /^(http:\/\/(?:127\.0\.0\.1|\[::1\]|localhost))(?::\d{1,5})?([/?].*)?$/;

const page = (error: OAuthErrorCode, description: string, status = 400): AuthorizeOutcome => ({ kind: 'page', error, description, status });

/** `uri` plus these parameters, keeping the URI's own query exactly as registered. */
function withParams(uri: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, v);
  return `${uri}${uri.includes('?') ? '&' : '?'}${q}`;
}

/** Exact string match; for a loopback redirect URI (RFC 8252 §7.3), any port. */
export function redirectUriRegistered(client: OAuthClient, uri: string): boolean {
  if (client.redirectUris.includes(uri)) return true;
  const asked = LOOPBACK.exec(uri);
  // Any port, but a port there is (http://127.0.0.1:99999/ is no URL).
  if (!asked || !URL.canParse(uri)) return false;
  return client.redirectUris.some((r) => {
    const m = LOOPBACK.exec(r);
    return m !== null && m[1] === asked[1] && (m[2] ?? '') === (asked[2] ?? '');
  });
}

/** Where an error goes once the client and its redirect URI are known: back to it (RFC 9207's iss included). */
const errorTo = (
  svc: Svc,
  redirectUri: string,
  state: string | undefined,
  error: OAuthErrorCode,
  description: string,
): AuthorizeOutcome => ({
  kind: 'redirect',
  location: withParams(redirectUri, { error, error_description: description, state, iss: svc.config.publicUrl }),
});

const loginPage = (interactionId: string) => `/login?next=${encodeURIComponent(`/oauth2/authorize?interaction=${interactionId}`)}`;

export const consentPath = (interactionId: string) => `/oauth2/consent?interaction=${interactionId}`;

/**
 * A new authorization request: its parameters (empty values dropped) and the
 * names that came more than once.
 */
export async function authorize(
  svc: Svc,
  params: Readonly<Record<string, string>>,
  repeated: readonly string[],
  cookie: string | undefined,
): Promise<AuthorizeOutcome> {
  if (params.interaction !== undefined && Object.keys(params).length === 1) return resume(svc, params.interaction, cookie);
  if (repeated.includes('client_id') || repeated.includes('redirect_uri')) {
    return page('invalid_request', `The parameter ${repeated.includes('client_id') ? 'client_id' : 'redirect_uri'} is repeated`);
  }
  if (params.client_id === undefined) return page('invalid_request', 'client_id is missing');
  const client = await findClient(svc, params.client_id);
  if (!client) return page('invalid_client', 'No client is registered with this client_id');
  const redirectUri = params.redirect_uri;
  if (redirectUri === undefined) return page('invalid_request', 'redirect_uri is missing');
  if (!redirectUriRegistered(client, redirectUri)) return page('invalid_request', 'This redirect_uri is not registered for the client');

  const state = repeated.includes('state') ? undefined : params.state;
  const fail = (error: OAuthErrorCode, description: string) => errorTo(svc, redirectUri, state, error, description);
  if (repeated.length > 0) return fail('invalid_request', `The parameter ${repeated[0]} is repeated`);
  // Text the database refuses (NUL) never gets as far as the code's row.
  const withNul = Object.keys(params).find((k) => k.includes('\0') || params[k]!.includes('\0'));
  if (withNul !== undefined) return fail('invalid_request', 'A parameter holds a NUL character');
  if (params.request !== undefined) return fail('request_not_supported', 'Request objects are not supported');
  if (params.request_uri !== undefined) return fail('request_uri_not_supported', 'request_uri is not supported');
  if (params.response_type === undefined) return fail('invalid_request', 'response_type is missing');
  if (params.response_type !== 'code') return fail('unsupported_response_type', 'Only response_type=code is supported');
  if (params.response_mode !== undefined && params.response_mode !== 'query')
    return fail('invalid_request', 'Only response_mode=query is supported');
  if (!client.grantTypes.includes('authorization_code')) {
    return fail('unauthorized_client', 'This client may not use the authorization code grant');
  }
  const scopes = resolveScopes(params.scope, client);
  if (!scopes.ok) return fail('invalid_scope', `This client may not ask for ${scopes.refused.join(' ')}`);

  const challenge = params.code_challenge;
  const method = params.code_challenge_method;
  if (method !== undefined && method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256');
  if (challenge === undefined && method !== undefined) return fail('invalid_request', 'code_challenge is missing');
  if (challenge !== undefined && method === undefined)
    return fail('invalid_request', 'code_challenge_method=S256 is required (plain is refused)');
  if (challenge !== undefined && !CODE_CHALLENGE.test(challenge)) return fail('invalid_request', 'code_challenge is malformed');
  if (challenge === undefined && client.type === 'public') return fail('invalid_request', 'A public client must use PKCE (code_challenge)');

  const prompt = (params.prompt ?? '').split(' ').filter(Boolean);
  const unknownPrompt = prompt.find((p) => !PROMPTS.has(p));
  if (unknownPrompt !== undefined) return fail('invalid_request', `Unknown prompt value ${unknownPrompt}`);
  if (prompt.includes('none') && prompt.length > 1) return fail('invalid_request', 'prompt=none cannot be combined with other values');

  let maxAge: number | undefined;
  if (params.max_age !== undefined) {
    if (!/^\d{1,10}$/.test(params.max_age)) return fail('invalid_request', 'max_age must be a non-negative integer');
    maxAge = Number(params.max_age);
  }
  let hintSub: string | undefined;
  if (params.id_token_hint !== undefined) {
    const hint = await verifyIdTokenHint(svc, params.id_token_hint);
    if (!hint) return fail('invalid_request', 'id_token_hint is not an ID token of this provider');
    hintSub = hint.sub;
  }

  const request: AuthorizationRequest = {
    clientId: client.id,
    redirectUri,
    scopes: scopes.scopes,
    prompt,
    ...(state !== undefined ? { state } : {}),
    ...(params.nonce !== undefined ? { nonce: params.nonce } : {}),
    ...(challenge !== undefined ? { codeChallenge: challenge } : {}),
    ...(hintSub !== undefined ? { hintSub } : {}),
  };
  const now = svc.clock();
  const session = await loadBrowserSession(svc.database.db, cookie, now);
  const mustSignIn =
    session === null ||
    prompt.includes('login') ||
    prompt.includes('select_account') ||
    (maxAge !== undefined && now - session.authTime.getTime() > maxAge * 1000) ||
    (hintSub !== undefined && hintSub !== session.userId);
  if (mustSignIn) {
    if (prompt.includes('none')) return fail('login_required', 'The user must sign in');
    const id = await saveInteraction(svc, { request, ...(session !== null ? { loginAfter: now } : {}) });
    return { kind: 'redirect', location: loginPage(id) };
  }
  return proceed(svc, client, request, session, undefined);
}

/** /oauth2/authorize?interaction=<id>: back from the login page. */
async function resume(svc: Svc, id: string, cookie: string | undefined): Promise<AuthorizeOutcome> {
  const interaction = await loadInteraction(svc, id);
  if (!interaction) return page('invalid_request', 'This sign-in request has expired or was already answered; start again from the app');
  const { request } = interaction;
  const client = await findClient(svc, request.clientId);
  if (!client) return page('invalid_client', 'The client is no longer registered');
  const session = await loadBrowserSession(svc.database.db, cookie, svc.clock());
  if (session === null || (interaction.loginAfter !== undefined && session.authTime.getTime() < interaction.loginAfter)) {
    return { kind: 'redirect', location: loginPage(id) };
  }
  if (request.hintSub !== undefined && request.hintSub !== session.userId) {
    await endInteraction(svc, id);
    return errorTo(svc, request.redirectUri, request.state, 'login_required', 'Signed in as another user than id_token_hint names');
  }
  return proceed(svc, client, request, session, id);
}

/** Signed in: ask for consent when needed, else answer with a code. */
async function proceed(
  svc: Svc,
  client: OAuthClient,
  request: AuthorizationRequest,
  session: BrowserSession,
  interactionId: string | undefined,
): Promise<AuthorizeOutcome> {
  const grant = await findGrant(svc, session.userId, client.id);
  // offline_access asks every time (OpenID Connect Core 11): a remembered grant does not stand for it.
  const needsConsent =
    !client.firstParty &&
    (request.prompt.includes('consent') || request.scopes.includes('offline_access') || !grantCovers(grant, request.scopes));
  if (needsConsent) {
    if (request.prompt.includes('none')) {
      await endInteraction(svc, interactionId);
      return errorTo(svc, request.redirectUri, request.state, 'consent_required', 'The user has not allowed this client these scopes');
    }
    const id = await saveInteraction(svc, { request, consentSessionId: session.sessionId }, interactionId);
    return { kind: 'redirect', location: consentPath(id) };
  }
  await endInteraction(svc, interactionId);
  return codeFor(svc, request, session);
}

async function codeFor(svc: Svc, request: AuthorizationRequest, session: BrowserSession): Promise<AuthorizeOutcome> {
  // A first-party client's grant is recorded too: every token then hangs off a grant the user can revoke.
  const grantId = await allowScopes(svc, session.userId, request.clientId, request.scopes);
  const code = await issueCode(svc, {
    clientId: request.clientId,
    userId: session.userId,
    sessionId: session.sessionId,
    grantId,
    redirectUri: request.redirectUri,
    scopes: scopeString(request.scopes),
    nonce: request.nonce ?? null,
    codeChallenge: request.codeChallenge ?? null,
  });
  return {
    kind: 'redirect',
    location: withParams(request.redirectUri, { code, state: request.state, iss: svc.config.publicUrl }),
  };
}

/** What the consent page shows: the client and the scopes asked, for the session that may answer. */
export async function consentPrompt(
  svc: Svc,
  id: string,
  cookie: string | undefined,
): Promise<{ kind: 'prompt'; client: OAuthClient; request: AuthorizationRequest; session: BrowserSession } | AuthorizeOutcome> {
  const interaction = await loadInteraction(svc, id);
  if (!interaction || interaction.consentSessionId === undefined) {
    return page('invalid_request', 'This request has expired or was already answered; start again from the app');
  }
  const client = await findClient(svc, interaction.request.clientId);
  if (!client) return page('invalid_client', 'The client is no longer registered');
  const session = await loadBrowserSession(svc.database.db, cookie, svc.clock());
  if (session === null || session.sessionId !== interaction.consentSessionId) {
    return { kind: 'redirect', location: `/oauth2/authorize?interaction=${id}` };
  }
  return { kind: 'prompt', client, request: interaction.request, session };
}

/** The user's answer on the consent page (Origin and CSRF token already checked against `session`). */
export async function answerConsent(svc: Svc, id: string, session: BrowserSession, allow: boolean): Promise<AuthorizeOutcome> {
  const interaction = await takeInteraction(svc, id);
  if (!interaction || interaction.consentSessionId !== session.sessionId) {
    return page('invalid_request', 'This request has expired or was already answered; start again from the app');
  }
  const { request } = interaction;
  if (!(await findClient(svc, request.clientId))) return page('invalid_client', 'The client is no longer registered');
  if (!allow) return errorTo(svc, request.redirectUri, request.state, 'access_denied', 'The user did not allow the request');
  return codeFor(svc, request, session);
}

export type { Interaction };
