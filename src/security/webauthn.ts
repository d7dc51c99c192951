// WebAuthn ceremonies (with @simplewebauthn/server): each challenge is kept in
// the shared store for 5 minutes with what it is for, and taken (read and
// deleted at once) by the one response that answers it, so any instance can
// finish a ceremony another started and no challenge answers twice.
import { storeKeys, type Store } from '../store/store.js';

export const CHALLENGE_TTL_MS = 5 * 60_000;

export type Ceremony =
  /** Issued only after the user's step-up (POST /users/me/passkeys/options): adding a sign-in method needs it. */
  | { kind: 'register'; userId: string; steppedUp: true }
  | { kind: 'login' }
  /** The passkey answer of a sign-in's MFA step (bound to that step's mfaToken). */
  | { kind: 'mfa'; userId: string; mfaTokenHash: string };

/** Kept for 5 minutes; false when the store could not keep it (the ceremony could never finish). */
export async function rememberChallenge(store: Store, challenge: string, ceremony: Ceremony): Promise<boolean> {
  return store.set(storeKeys.webauthnChallenge(challenge), JSON.stringify(ceremony), { ttlMs: CHALLENGE_TTL_MS });
}

/** The challenge a response answers, read from its clientDataJSON (verified against it afterwards). */
export function challengeOf(response: { response: { clientDataJSON: string } }): string | null {
  try {
    const data = JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof data.challenge === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(data.challenge) ? data.challenge : null;
  } catch {
    return null;
  }
}

/** Take the ceremony of the response's challenge: null when unknown, expired or already answered. */
export async function takeCeremony(
  store: Store,
  response: { response: { clientDataJSON: string } },
): Promise<{ challenge: string; ceremony: Ceremony } | null> {
  const challenge = challengeOf(response);
  if (challenge === null) return null;
  const raw = await store.take(storeKeys.webauthnChallenge(challenge));
  if (raw === null) return null;
  try {
    return { challenge, ceremony: JSON.parse(raw) as Ceremony };
  } catch {
    return null;
  }
}

/** A user id as the 16 bytes WebAuthn calls the user handle (a UUID without its dashes). */
export const userHandleOf = (userId: string) => new Uint8Array(Buffer.from(userId.replace(/-/g, ''), 'hex'));
