// One external sign-in, whatever the provider's type: its start keeps state,
// nonce and PKCE verifier server-side (the shared store, by the SHA-256 of the
// state, 10 minutes, taken once) and binds the flow to the browser with a
// cookie whose hash the flow keeps; its callback takes the flow back, checks
// it came to the same browser for the same provider, and lets the provider's
// strategy turn the answer into a profile. The linking rules (linking.ts)
// decide who that is.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import type { AppServices } from '../../deps.js';
import type { UpstreamFlow, UpstreamProfile } from './profile.js';
import type { UpstreamProvider } from './providers.js';
import { ExternalSignInError, type UpstreamStrategy } from './strategy.js';

export const FLOW_TTL_MS = 10 * 60_000;
/** The flow cookie lives as long as the flow, and only under /auth/external. */
export const FLOW_COOKIE_PATH = '/auth/external';
const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

/**
 * One cookie per flow, named after its state, so sign-ins started at once in
 * two tabs each come back to their own binding.
 */
export const flowCookieName = (publicUrl: string, state: string) =>
  `${publicUrl.startsWith('https://') ? '__Secure-auth_ext' : 'auth_ext'}_${sha256(state).slice(0, 16)}`;
export const DEFAULT_NEXT = '/account';

const flowKey = (state: string) => `xf:${sha256(state)}`;
/** What a state this service made looks like (32 random bytes, base64url). */
export const FLOW_STATE = /^[A-Za-z0-9_-]{43}$/;

/** Where to go once signed in: a same-site path (one leading `/`, no `//`, no backslash, no control character), else /account. */
export function safeNext(next: string | undefined): string {
  if (next === undefined || next.length > 2048) return DEFAULT_NEXT;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (!next.startsWith('/') || next.startsWith('//') || next.includes('\\') || /[\u0000-\u001f\u007f]/.test(next)) return DEFAULT_NEXT;
  return next;
}

/** The Set-Cookie header of a flow's cookie (an empty value and Max-Age 0 clear it). */
export function flowCookieHeader(publicUrl: string, state: string, value: string, maxAgeSeconds: number): string {
  const secure = publicUrl.startsWith('https://') ? '; Secure' : '';
  return `${flowCookieName(publicUrl, state)}=${value}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; Path=${FLOW_COOKIE_PATH}; HttpOnly; SameSite=Lax${secure}`;
}

export const callbackUrl = (publicUrl: string, providerId: string) =>
  `${publicUrl}/auth/external/${encodeURIComponent(providerId)}/callback`;

/**
 * The start: a new flow kept for 10 minutes, the provider's authorization URL
 * and the value of the cookie that binds the flow to this browser.
 */
export async function startFlow(
  svc: Pick<AppServices, 'store' | 'clock' | 'config'>,
  strategy: UpstreamStrategy,
  provider: UpstreamProvider,
  opts: { next: string; link?: UpstreamFlow['link'] },
): Promise<{ location: URL; state: string; cookie: string }> {
  const state = randomBytes(32).toString('base64url');
  const cookie = randomBytes(32).toString('base64url');
  const nonce = randomBytes(32).toString('base64url');
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const location = await strategy.authorizationUrl(provider, {
    redirectUri: callbackUrl(svc.config.publicUrl, provider.id),
    state,
    nonce,
    codeChallenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
  });
  const flow: UpstreamFlow = {
    providerId: provider.id,
    nonce,
    codeVerifier,
    next: opts.next,
    ...(opts.link ? { link: opts.link } : {}),
    browserBinding: sha256(cookie),
    createdAt: svc.clock(),
  };
  const saved = await svc.store.set(flowKey(state), JSON.stringify(flow), { ttlMs: FLOW_TTL_MS });
  if (!saved) throw new ExternalSignInError('upstream_unavailable', 'The sign-in could not be started: try again shortly', 'store refused');
  return { location, state, cookie };
}

const INVALID_STATE =
  'This sign-in link has expired, was already used, or was started in another browser: start the sign-in again from this browser';

/**
 * The callback's flow, taken for good (a replayed callback finds nothing):
 * refused unless its state is known and unexpired, the flow is this provider's
 * and the flow cookie is the one its start set.
 */
export async function takeFlow(
  svc: Pick<AppServices, 'store' | 'clock'>,
  providerId: string,
  state: string | undefined,
  cookie: string | undefined,
): Promise<UpstreamFlow> {
  if (state === undefined || !FLOW_STATE.test(state))
    throw new ExternalSignInError('invalid_state', INVALID_STATE, 'no or malformed state');
  const raw = await svc.store.take(flowKey(state));
  let flow: UpstreamFlow | null = null;
  try {
    flow = raw === null ? null : (JSON.parse(raw) as UpstreamFlow);
  } catch {
    flow = null;
  }
  if (flow === null || typeof flow.browserBinding !== 'string')
    throw new ExternalSignInError('invalid_state', INVALID_STATE, 'unknown state');
  if (flow.providerId !== providerId) throw new ExternalSignInError('invalid_state', INVALID_STATE, 'state of another provider');
  if (svc.clock() - flow.createdAt > FLOW_TTL_MS) throw new ExternalSignInError('invalid_state', INVALID_STATE, 'expired state');
  const presented = Buffer.from(sha256(cookie ?? ''));
  const expected = Buffer.from(flow.browserBinding);
  if (cookie === undefined || presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new ExternalSignInError('invalid_state', INVALID_STATE, 'flow cookie missing or not this flow');
  }
  return flow;
}

/** The provider's answer, checked by its strategy: the profile of who signed in. */
export async function finishFlow(
  svc: Pick<AppServices, 'config'>,
  strategy: UpstreamStrategy,
  provider: UpstreamProvider,
  flow: UpstreamFlow,
  url: URL,
  state: string,
): Promise<UpstreamProfile> {
  return strategy.finish(provider, {
    url,
    redirectUri: callbackUrl(svc.config.publicUrl, provider.id),
    state,
    nonce: flow.nonce,
    codeVerifier: flow.codeVerifier,
  });
}
