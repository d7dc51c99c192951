// The pages' one connection to the API: the project's typed client, with the
// tokens in memory and sessionStorage (this tab only; never a cookie).
import type { ClientResponse } from 'hono/client';
import type { SuccessStatusCode } from 'hono/utils/http-status';
import { createClient, type Tokens } from '../client.js';

const KEY = 'auth-system.tokens';

function stored(): Tokens | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

let tokens: Tokens | null = stored();

export const client = createClient(location.origin, {
  getTokens: () => tokens,
  onTokens: (next) => {
    tokens = next;
    if (next) sessionStorage.setItem(KEY, JSON.stringify(next));
    else sessionStorage.removeItem(KEY);
  },
});

export const api = client.api;
export const signedIn = () => tokens !== null;

/** A problem answer as the pages show it: the detail, and field errors by path. */
export type Problem = { status: number; code: string; detail: string; errors?: { path: string; message: string }[]; [k: string]: unknown };

/** What read() needs of a response: the typed client's, or fetch's. */
type AnyResponse = { status: number; statusText: string; json(): Promise<unknown> };

/** The body a typed client response carries on success, as its route declares it (unknown for a plain fetch). */
export type SuccessBody<R> = R extends ClientResponse<infer T, infer S, infer _F> ? (S extends SuccessStatusCode ? T : never) : unknown;

/** The JSON of a response, or the problem it carries. */
export async function read<R extends AnyResponse>(
  res: R,
  ok: number[] = [200, 201],
): Promise<{ ok: true; data: SuccessBody<R> } | { ok: false; problem: Problem }> {
  if (ok.includes(res.status)) return { ok: true, data: (res.status === 204 ? undefined : await res.json()) as SuccessBody<R> };
  let body: Partial<Problem> = {};
  try {
    body = (await res.json()) as Partial<Problem>;
  } catch {
    body = {};
  }
  return { ok: false, problem: { ...body, status: res.status, code: body.code ?? 'error', detail: body.detail ?? res.statusText } };
}

/**
 * A page that needs a signed-in user and holds no token pair: ask for the
 * tokens of the browser session (the HttpOnly cookie an external sign-in's
 * callback set, or a sign-in in another tab). Same-origin plain fetch: the
 * route is the pages', not the API's. True when the tab is signed in now.
 */
export async function restoreFromBrowserSession(): Promise<boolean> {
  if (tokens) return true;
  try {
    const res = await fetch('/session/tokens', { method: 'POST', credentials: 'same-origin' });
    if (res.status !== 200) return false;
    const pair = (await res.json()) as Partial<Tokens>;
    if (typeof pair.accessToken !== 'string' || typeof pair.refreshToken !== 'string') return false;
    await client.setTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
    return true;
  } catch {
    return false;
  }
}

/** Signed in: by the tokens this tab holds, else by the browser session's. */
export const ensureSignedIn = async (): Promise<boolean> => signedIn() || (await restoreFromBrowserSession());

/** The enabled identity providers (the buttons of /login and /register); none when the list cannot be read. */
export type ExternalProvider = { id: string; name: string; type: string };
export async function enabledProviders(): Promise<ExternalProvider[]> {
  try {
    const res = await api.auth['identity-providers'].$get();
    return res.status === 200 ? (await res.json()).items : [];
  } catch {
    return [];
  }
}

/** Where an external sign-in (or, with `link`, linking) with `provider` starts: a plain navigation. */
export const externalSignInUrl = (provider: string, next: string, link = false): string =>
  `/auth/external/${encodeURIComponent(provider)}?${link ? 'link=1&' : ''}next=${encodeURIComponent(next)}`;

/** Send the browser to the sign-in page, back here afterwards. */
export function toLogin(): void {
  location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
}

/**
 * Make this tab's sign-in the provider's browser session (the HttpOnly cookie
 * that /oauth2/authorize trusts): called after every sign-in, before going on.
 * Plain fetch: the route is the pages', not the API's. True when it was set.
 */
export async function startBrowserSession(): Promise<boolean> {
  if (!tokens) return false;
  try {
    const res = await fetch('/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Authorization: `Bearer ${tokens.accessToken}` },
    });
    return res.status === 204;
  } catch {
    return false;
  }
}

/**
 * End the browser session and clear its cookie. After the API's logout only
 * the cookie is left to clear; while this tab still holds a token of the same
 * sign-in, that token is the proof (no CSRF token needed) and the sign-in ends.
 */
export async function endBrowserSession(): Promise<void> {
  try {
    await fetch('/session/end', {
      method: 'POST',
      credentials: 'same-origin',
      headers: tokens ? { Authorization: `Bearer ${tokens.accessToken}` } : {},
    });
  } catch {
    // Signing out goes on: the API's logout ends the same session.
  }
}
