// Interactions: an authorization request waiting for the user (to sign in, or
// to answer the consent page), kept in the shared store for ten minutes under
// a random id, so any instance can resume it. The id is all the browser
// carries; the request itself never leaves the server. An interaction is used
// up when it ends in a code or an error.
import { randomBytes } from 'node:crypto';
import type { AppServices } from '../deps.js';
import { storeKeys } from '../store/store.js';
import type { KnownScope } from './scopes.js';

export const INTERACTION_TTL_MS = 10 * 60 * 1000;

const interactionKey = storeKeys.oauthInteraction;

/** An authorization request as validated: everything needed to finish it without asking the client again. */
export type AuthorizationRequest = {
  clientId: string;
  redirectUri: string;
  scopes: KnownScope[];
  state?: string;
  nonce?: string;
  codeChallenge?: string;
  /** The prompt values asked (none, login, consent, select_account). */
  prompt: string[];
  /** The user the id_token_hint names, when one was sent. */
  hintSub?: string;
};

export type Interaction = {
  request: AuthorizationRequest;
  /** The sign-in must have happened at or after this instant (ms): prompt=login, max_age, another user. */
  loginAfter?: number;
  /** The session shown the consent page: only it may answer. */
  consentSessionId?: string;
};

const ID = /^[A-Za-z0-9_-]{32}$/;

export async function saveInteraction(svc: Pick<AppServices, 'store'>, interaction: Interaction, id = newInteractionId()): Promise<string> {
  await svc.store.set(interactionKey(id), JSON.stringify(interaction), { ttlMs: INTERACTION_TTL_MS });
  return id;
}

export const newInteractionId = () => randomBytes(24).toString('base64url');

const parse = (text: string | null): Interaction | null => {
  if (text === null) return null;
  try {
    return JSON.parse(text) as Interaction;
  } catch {
    return null;
  }
};

/** The waiting interaction, or null (unknown, expired, used up or not an id). */
export async function loadInteraction(svc: Pick<AppServices, 'store'>, id: string): Promise<Interaction | null> {
  return ID.test(id) ? parse(await svc.store.get(interactionKey(id))) : null;
}

/** Take the interaction for good (of two racing answers, one gets it). */
export async function takeInteraction(svc: Pick<AppServices, 'store'>, id: string): Promise<Interaction | null> {
  return ID.test(id) ? parse(await svc.store.take(interactionKey(id))) : null;
}

export async function endInteraction(svc: Pick<AppServices, 'store'>, id: string | undefined): Promise<void> {
  if (id !== undefined && ID.test(id)) await svc.store.del(interactionKey(id));
}
