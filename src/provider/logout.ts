// RP-Initiated Logout 1.0: a client sends the user here to sign out. The
// session ends (its `sessions` row, so every token of it on the next request)
// when the request proves which sign-in it is about (an id_token_hint of the
// current session, expired or not) or the user confirms on the page. The user
// goes back to the client only to a post_logout_redirect_uri that client registered.
import type { AppServices } from '../deps.js';
import type { OAuthErrorCode } from '../lib/oauth-error.js';
import { type BrowserSession, loadBrowserSession } from '../access/browser-session.js';
import { revokeSessions } from '../modules/sessions/sessions.service.js';
import { findClient } from './clients.js';
import { verifyIdTokenHint } from './jwt.js';

type Svc = Pick<AppServices, 'database' | 'store' | 'clock' | 'config' | 'keyRing' | 'tx'>;

export type LogoutOutcome =
  /** Signed out (or nothing to sign out of): back to the client, or the signed-out page when `location` is null. */
  | { kind: 'done'; location: string | null }
  /** Ask the user: a page with a Sign out button that posts these fields back with the CSRF token. */
  | { kind: 'confirm'; session: BrowserSession; fields: Record<string, string>; redirectUri: string | null }
  | { kind: 'page'; error: OAuthErrorCode; description: string };

type Target = { location: string | null; fields: Record<string, string> };

/** Where the user goes after signing out: a registered post_logout_redirect_uri of the client, with state; else nowhere. */
async function targetOf(svc: Svc, params: Readonly<Record<string, string>>, hintAud: string[] | null): Promise<Target | { error: string }> {
  if (params.client_id !== undefined && hintAud !== null && !hintAud.includes(params.client_id)) {
    return { error: 'client_id is not the audience of id_token_hint' };
  }
  const clientId = params.client_id ?? hintAud?.[0];
  const fields: Record<string, string> = {};
  const uri = params.post_logout_redirect_uri;
  if (clientId === undefined || uri === undefined) return { location: null, fields };
  const client = await findClient(svc, clientId);
  if (!client?.postLogoutRedirectUris.includes(uri)) return { location: null, fields };
  Object.assign(fields, { client_id: client.id, post_logout_redirect_uri: uri }, params.state !== undefined ? { state: params.state } : {});
  const q = params.state !== undefined ? `${uri.includes('?') ? '&' : '?'}${new URLSearchParams({ state: params.state })}` : '';
  return { location: `${uri}${q}`, fields };
}

async function endSession(svc: Svc, sessionId: string): Promise<void> {
  const now = new Date(svc.clock());
  await svc.tx((tx, emit) => revokeSessions(tx, emit, { sessionId }, 'logout', now));
}

/** GET|POST /oauth2/logout from a client. */
export async function logoutRequest(
  svc: Svc,
  params: Readonly<Record<string, string>>,
  cookie: string | undefined,
): Promise<LogoutOutcome> {
  const hint = params.id_token_hint === undefined ? null : await verifyIdTokenHint(svc, params.id_token_hint);
  const target = await targetOf(svc, params, hint?.aud ?? null);
  if ('error' in target) return { kind: 'page', error: 'invalid_request', description: target.error };
  const session = await loadBrowserSession(svc.database.db, cookie, svc.clock());
  if (session === null) return { kind: 'done', location: target.location };
  const sameSignIn = hint !== null && (hint.sid !== undefined ? hint.sid === session.sessionId : hint.sub === session.userId);
  if (sameSignIn) {
    await endSession(svc, session.sessionId);
    return { kind: 'done', location: target.location };
  }
  return {
    kind: 'confirm',
    session,
    fields: target.fields,
    redirectUri: target.location === null ? null : target.fields.post_logout_redirect_uri!,
  };
}

/** The confirm page's Sign out (Origin and CSRF already checked against `session`). */
export async function confirmLogout(svc: Svc, params: Readonly<Record<string, string>>, session: BrowserSession): Promise<LogoutOutcome> {
  const target = await targetOf(svc, params, null);
  if ('error' in target) return { kind: 'page', error: 'invalid_request', description: target.error };
  await endSession(svc, session.sessionId);
  return { kind: 'done', location: target.location };
}
