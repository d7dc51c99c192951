// The passkey strategy (WebAuthn assertions): a passwordless sign-in (amr hwk),
// and the passkey answer of the MFA step (second-factor.ts). Verification is
// @simplewebauthn/server's; what is added here: the stored challenge (any
// instance, single use), the credential looked up by its id and bound to its
// user, and the signature counter advanced with a conditional update, so a
// cloned authenticator or a replayed assertion is refused even when two
// instances see it at once.
import { and, asc, eq } from 'drizzle-orm';
import {
  generateAuthenticationOptions,
  verifyAuthenticationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import type { AppServices } from '../deps.js';
import { passkeys, users } from '../db/schema.js';
import { problem } from '../lib/problem.js';
import { CHALLENGE_TTL_MS, rememberChallenge, takeCeremony, userHandleOf, type Ceremony } from '../security/webauthn.js';
import type { Authentication } from './authentication.js';
import { admit } from './rules.js';

/** An assertion as the browser's PublicKeyCredential.toJSON() gives it, checked by the caller's schema. */
export type PasskeyAssertion = {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string | null | undefined };
};

/** A passkey's transports as stored (comma-separated), for the options of a ceremony. */
export const transportsOf = (p: { transports: string | null }) => (p.transports ? p.transports.split(',') : undefined);

export const unkeptChallenge = (): never => problem('service_unavailable', 'The challenge could not be saved: try again shortly');

/**
 * POST /auth/passkey/options. With an mfaToken's user: that user's passkeys,
 * for the MFA step. With an email: that account's passkeys; an address with
 * none (or no account) gets a stable decoy, so the answer does not tell which.
 * With neither: discoverable credentials (the browser offers what it holds).
 */
export async function authenticationOptions(
  svc: AppServices,
  input: { email?: string | undefined } | { mfa: { userId: string; mfaTokenHash: string } },
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const db = svc.database.db;
  let allow: { id: string; transports?: string[] }[] = [];
  let ceremony: Ceremony = { kind: 'login' };
  const credentialsOf = async (userId: string) =>
    (await db.select().from(passkeys).where(eq(passkeys.userId, userId)).orderBy(asc(passkeys.createdAt))).map((p) => ({
      id: p.credentialId,
      ...(transportsOf(p) ? { transports: transportsOf(p)! } : {}),
    }));
  if ('mfa' in input) {
    allow = await credentialsOf(input.mfa.userId);
    ceremony = { kind: 'mfa', ...input.mfa };
  } else if (input.email !== undefined) {
    const [u] = await db.select({ id: users.id }).from(users).where(eq(users.email, input.email));
    // Ids only: no transport hint may tell a real entry from the decoy.
    allow = u ? (await credentialsOf(u.id)).map(({ id }) => ({ id })) : [];
    if (allow.length === 0) allow = [{ id: svc.secrets.mac(`passkey-decoy:${input.email}`).toString('base64url') }];
  }
  const options = await generateAuthenticationOptions({
    rpID: svc.config.webauthn.rpId,
    allowCredentials: allow,
    timeout: CHALLENGE_TTL_MS,
    // A passkey alone must verify the user (PIN, biometrics); as a second factor, presence is enough.
    userVerification: ceremony.kind === 'mfa' ? 'preferred' : 'required',
  });
  if (!(await rememberChallenge(svc.store, options.challenge, ceremony))) unkeptChallenge();
  return options;
}

const INVALID = 'The passkey is unknown, its signature does not check out, or the challenge was already used';
const invalidPasskey = (): never => problem('invalid_passkey', INVALID, { status: 401, audit: 'passkey_invalid' });

/**
 * Verify an assertion against the ceremony its challenge was issued for.
 * `expect` says which ceremony may be answered (and for the MFA step, by whose
 * passkey). Returns the user whose passkey signed. Every failure is 401 invalid_passkey.
 */
export async function verifyAssertion(
  svc: AppServices,
  response: PasskeyAssertion,
  expect: { kind: 'login' } | { kind: 'mfa'; userId: string; mfaTokenHash: string },
): Promise<{ userId: string; passkeyId: string }> {
  const fail = invalidPasskey;
  const taken = await takeCeremony(svc.store, response);
  if (!taken || taken.ceremony.kind !== expect.kind) return fail();
  if (expect.kind === 'mfa') {
    const c = taken.ceremony as Extract<Ceremony, { kind: 'mfa' }>;
    if (c.userId !== expect.userId || c.mfaTokenHash !== expect.mfaTokenHash) return fail();
  }
  // The library checks the signature, not which credential signed: the id is looked up here.
  const [p] = await svc.database.db.select().from(passkeys).where(eq(passkeys.credentialId, response.id));
  if (!p || response.rawId !== response.id) return fail();
  if (expect.kind === 'mfa' && p.userId !== expect.userId) return fail();
  const handle = response.response.userHandle;
  if (handle && handle !== Buffer.from(userHandleOf(p.userId)).toString('base64url')) return fail();
  let newCounter: number | undefined;
  try {
    const r = await verifyAuthenticationResponse({
      response: response as AuthenticationResponseJSON,
      expectedChallenge: taken.challenge,
      expectedOrigin: svc.config.webauthn.origins,
      expectedRPID: svc.config.webauthn.rpId,
      credential: {
        id: p.credentialId,
        publicKey: new Uint8Array(Buffer.from(p.publicKey, 'base64url')),
        counter: p.counter,
        ...(transportsOf(p) ? { transports: transportsOf(p)! } : {}),
      },
      // Signing in with a passkey alone needs the user verified on the device (PIN, biometrics).
      requireUserVerification: expect.kind === 'login',
    });
    newCounter = r.verified ? r.authenticationInfo.newCounter : undefined;
  } catch {
    newCounter = undefined;
  }
  if (newCounter === undefined) return fail();
  // The counter only moves forward, once: a second use of the same count loses.
  const moved = await svc.tx((tx) =>
    tx
      .update(passkeys)
      .set({ counter: newCounter, lastUsedAt: new Date(svc.clock()) })
      .where(and(eq(passkeys.id, p.id), eq(passkeys.counter, p.counter)))
      .returning({ id: passkeys.id }),
  );
  if (moved.length === 0) return fail();
  return { userId: p.userId, passkeyId: p.id };
}

/** POST /auth/passkey/login: a passwordless sign-in (amr ["hwk"]). */
export async function signInWithPasskey(svc: AppServices, response: PasskeyAssertion): Promise<Authentication> {
  let userId: string;
  try {
    ({ userId } = await verifyAssertion(svc, response, { kind: 'login' }));
  } catch (err) {
    svc.stats.add('auth.loginFailed');
    throw err;
  }
  const [user] = await svc.database.db.select().from(users).where(eq(users.id, userId));
  if (!user) return invalidPasskey();
  return admit(svc, user, ['hwk']);
}
