// Passkeys (WebAuthn Level 2): registering, listing and removing them, and
// verifying an assertion, both for a passwordless sign-in and as the second
// factor of the MFA step. Verification is @simplewebauthn/server's; what is
// added here: the stored challenge (any instance, single use), the credential
// looked up by its id and bound to its user, and the signature counter
// advanced with a conditional update, so a cloned authenticator or a replayed
// assertion is refused even when two instances see it at once.
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { AppServices } from '../../deps.js';
import { isUniqueViolation } from '../../db/errors.js';
import { passkeys, users } from '../../db/schema.js';
import { problem } from '../../lib/problem.js';
import { CHALLENGE_TTL_MS, rememberChallenge, takeCeremony, userHandleOf, type Ceremony } from '../../security/webauthn.js';
import { factorChanged } from '../mfa/mfa.factors.js';
import type { AuthenticationResponse, PasskeyView } from './passkeys.schemas.js';
import { startSessionFor, type SignInOrigin } from '../auth/auth.service.js';
import type { TokenPair } from '../auth/auth.schemas.js';
import { assertReauthenticated } from '../mfa/mfa.codes.js';

type PasskeyRow = typeof passkeys.$inferSelect;

const view = (p: PasskeyRow): PasskeyView => ({
  id: p.id,
  name: p.name,
  createdAt: p.createdAt.toISOString(),
  lastUsedAt: p.lastUsedAt?.toISOString() ?? null,
});

const transportsOf = (p: Pick<PasskeyRow, 'transports'>) => (p.transports ? p.transports.split(',') : undefined);

export async function listPasskeys(svc: AppServices, userId: string): Promise<PasskeyView[]> {
  const rows = await svc.database.db
    .select()
    .from(passkeys)
    .where(eq(passkeys.userId, userId))
    .orderBy(desc(passkeys.createdAt), desc(passkeys.id));
  return rows.map(view);
}

/** What proves the step-up of adding or removing a passkey: the current password, and a code with TOTP on. */
export type PasskeyStepUp = { currentPassword: string; code?: string | undefined };

/**
 * POST /users/me/passkeys/options: a registration ceremony for the caller
 * (challenge kept 5 minutes), after the step-up: a bearer token alone does not
 * add a way to sign in. The challenge carries the step-up to POST /users/me/passkeys.
 */
export async function registrationOptions(
  svc: AppServices,
  caller: { userId: string; ip: string },
  given: PasskeyStepUp,
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { userId } = caller;
  const db = svc.database.db;
  const [u] = await db.select().from(users).where(eq(users.id, userId));
  if (!u) problem('not_found', 'No such user');
  await assertReauthenticated(svc, u, given, caller.ip);
  const existing = await db
    .select({ credentialId: passkeys.credentialId, transports: passkeys.transports })
    .from(passkeys)
    .where(eq(passkeys.userId, userId));
  const options = await generateRegistrationOptions({
    rpName: svc.config.webauthn.rpName,
    rpID: svc.config.webauthn.rpId,
    userName: u.email,
    userDisplayName: u.name,
    userID: userHandleOf(u.id),
    timeout: CHALLENGE_TTL_MS,
    attestationType: 'none',
    // The same authenticator is not registered twice.
    excludeCredentials: existing.map((p) => ({ id: p.credentialId, ...(transportsOf(p) ? { transports: transportsOf(p)! } : {}) })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  });
  if (!(await rememberChallenge(svc.store, options.challenge, { kind: 'register', userId, steppedUp: true }))) unkept();
  return options;
}

const unkept = (): never => problem('service_unavailable', 'The challenge could not be saved: try again shortly');

const BAD_CHALLENGE = 'The challenge is unknown, expired or already answered: ask for new options';

/**
 * POST /users/me/passkeys: verify the registration response (answering a
 * stepped-up options call of this user) and keep the credential. With
 * `endOtherSessions`, every other session of the user ends in the same
 * transaction (sign-ins made before, perhaps by someone else).
 */
export async function addPasskey(
  svc: AppServices,
  caller: { userId: string; sessionId: string; ip: string },
  input: { name: string; response: RegistrationResponseJSON; endOtherSessions?: boolean | undefined },
): Promise<PasskeyView> {
  const { userId } = caller;
  const taken = await takeCeremony(svc.store, input.response);
  if (taken?.ceremony.kind !== 'register' || taken.ceremony.userId !== userId || taken.ceremony.steppedUp !== true) {
    problem('invalid_passkey', BAD_CHALLENGE, { audit: 'passkey_invalid' });
  }
  let info: Awaited<ReturnType<typeof verifyRegistrationResponse>>['registrationInfo'];
  try {
    const r = await verifyRegistrationResponse({
      response: input.response,
      expectedChallenge: taken.challenge,
      expectedOrigin: svc.config.webauthn.origins,
      expectedRPID: svc.config.webauthn.rpId,
      // Verification is preferred, not required, at registration: the account is already signed in.
      requireUserVerification: false,
    });
    info = r.verified ? r.registrationInfo : undefined;
  } catch {
    info = undefined;
  }
  if (!info) problem('invalid_passkey', 'The attestation, origin or challenge does not check out', { audit: 'passkey_invalid' });
  const now = new Date(svc.clock());
  try {
    const row = await svc.tx(async (tx, emit) => {
      const [p] = await tx
        .insert(passkeys)
        .values({
          userId,
          credentialId: info.credential.id,
          publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
          counter: info.credential.counter,
          transports: (info.credential.transports ?? []).join(','),
          name: input.name,
          backedUp: info.credentialBackedUp,
          createdAt: now,
        })
        .returning();
      const [u] = await tx
        .update(users)
        .set({ passkeyCount: sql`${users.passkeyCount} + 1`, updatedAt: now })
        .where(eq(users.id, userId))
        .returning();
      if (!u) problem('not_found', 'No such user');
      await factorChanged(tx, emit, svc, u, {
        notice: `a passkey named “${input.name}” was added`,
        ip: caller.ip,
        now,
        ...(input.endOtherSessions ? { endSessions: { reason: 'passkey_added', except: caller.sessionId } } : {}),
      });
      return p!;
    });
    return view(row);
  } catch (err) {
    if (isUniqueViolation(err)) problem('invalid_passkey', 'This passkey is already registered', { audit: 'passkey_invalid' });
    throw err;
  }
}

/** DELETE /users/me/passkeys/:id, after the step-up (checked first: nothing is told or done without it). */
export async function removePasskey(
  svc: AppServices,
  caller: { userId: string; ip: string },
  id: string,
  given: PasskeyStepUp,
): Promise<void> {
  const { userId } = caller;
  const [row] = await svc.database.db.select().from(users).where(eq(users.id, userId));
  if (!row) problem('not_found', 'No such user');
  await assertReauthenticated(svc, row, given, caller.ip);
  const now = new Date(svc.clock());
  await svc.tx(async (tx, emit) => {
    const gone = await tx
      .delete(passkeys)
      .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
      .returning({ id: passkeys.id, name: passkeys.name });
    if (gone.length === 0) problem('passkey_not_found', 'No such passkey of yours');
    const [u] = await tx
      .update(users)
      .set({ passkeyCount: sql`${users.passkeyCount} - 1`, updatedAt: now })
      .where(eq(users.id, userId))
      .returning();
    await factorChanged(tx, emit, svc, u!, { notice: `the passkey named “${gone[0]!.name}” was removed`, ip: caller.ip, now });
  });
}

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
  if (!(await rememberChallenge(svc.store, options.challenge, ceremony))) unkept();
  return options;
}

const INVALID = 'The passkey is unknown, its signature does not check out, or the challenge was already used';

/**
 * Verify an assertion against the ceremony its challenge was issued for.
 * `expect` says which ceremony may be answered (and for the MFA step, by whose
 * passkey). Returns the user whose passkey signed. Every failure is 401 invalid_passkey.
 */
export async function verifyAssertion(
  svc: AppServices,
  response: AuthenticationResponse,
  expect: { kind: 'login' } | { kind: 'mfa'; userId: string; mfaTokenHash: string },
): Promise<{ userId: string; passkeyId: string }> {
  const fail = (): never => problem('invalid_passkey', INVALID, { status: 401, audit: 'passkey_invalid' });
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
export async function passkeyLogin(
  svc: AppServices,
  response: AuthenticationResponse,
  origin: SignInOrigin,
): Promise<{ userId: string; pair: TokenPair }> {
  let userId: string;
  try {
    ({ userId } = await verifyAssertion(svc, response, { kind: 'login' }));
  } catch (err) {
    svc.stats.add('auth.loginFailed');
    throw err;
  }
  const [u] = await svc.database.db.select({ emailVerifiedAt: users.emailVerifiedAt }).from(users).where(eq(users.id, userId));
  if (!u) problem('invalid_passkey', INVALID, { status: 401, audit: 'passkey_invalid' });
  if (svc.config.emailVerification === 'required' && u.emailVerifiedAt === null) {
    problem('email_not_verified', 'Confirm your email address first (the link is in the mail we sent)', { audit: 'email_not_verified' });
  }
  const pair = await startSessionFor(svc, userId, origin, ['hwk']);
  svc.stats.add('auth.loginSucceeded');
  return { userId, pair };
}
