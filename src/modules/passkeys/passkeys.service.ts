// Passkeys (WebAuthn Level 2): registering, listing and removing them.
// Signing in with one (alone or as the MFA step's answer) is the sign-in
// core's passkey strategy (src/signin/passkey.ts).
import { and, desc, eq, sql } from 'drizzle-orm';
import {
  generateRegistrationOptions,
  verifyRegistrationResponse,
  type PublicKeyCredentialCreationOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { AppServices } from '../../deps.js';
import { isUniqueViolation } from '../../db/errors.js';
import { passkeys, users } from '../../db/schema.js';
import { problem } from '../../lib/problem.js';
import { CHALLENGE_TTL_MS, rememberChallenge, takeCeremony, userHandleOf } from '../../security/webauthn.js';
import { factorChanged } from '../mfa/mfa.factors.js';
import { assertSignInMethodLeft } from '../identities/identities.service.js';
import type { PasskeyView } from './passkeys.schemas.js';
import { assertReauthenticated, type StepUpProof } from '../../signin/codes.js';
import { transportsOf, unkeptChallenge } from '../../signin/passkey.js';

type PasskeyRow = typeof passkeys.$inferSelect;

const view = (p: PasskeyRow): PasskeyView => ({
  id: p.id,
  name: p.name,
  createdAt: p.createdAt.toISOString(),
  lastUsedAt: p.lastUsedAt?.toISOString() ?? null,
});

export async function listPasskeys(svc: AppServices, userId: string): Promise<PasskeyView[]> {
  const rows = await svc.database.db
    .select()
    .from(passkeys)
    .where(eq(passkeys.userId, userId))
    .orderBy(desc(passkeys.createdAt), desc(passkeys.id));
  return rows.map(view);
}

/** What proves the step-up of adding or removing a passkey: the current password and a code with TOTP on (or a recent sign-in). */
export type PasskeyStepUp = StepUpProof;

/**
 * POST /users/me/passkeys/options: a registration ceremony for the caller
 * (challenge kept 5 minutes), after the step-up: a bearer token alone does not
 * add a way to sign in. The challenge carries the step-up to POST /users/me/passkeys.
 */
export async function registrationOptions(
  svc: AppServices,
  caller: { userId: string; sessionId: string; ip: string },
  given: PasskeyStepUp,
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { userId } = caller;
  const db = svc.database.db;
  const [u] = await db.select().from(users).where(eq(users.id, userId));
  if (!u) problem('not_found', 'No such user');
  await assertReauthenticated(svc, u, given, caller);
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
  if (!(await rememberChallenge(svc.store, options.challenge, { kind: 'register', userId, steppedUp: true }))) unkeptChallenge();
  return options;
}

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
  caller: { userId: string; sessionId: string; ip: string },
  id: string,
  given: PasskeyStepUp,
): Promise<void> {
  const { userId } = caller;
  const [row] = await svc.database.db.select().from(users).where(eq(users.id, userId));
  if (!row) problem('not_found', 'No such user');
  await assertReauthenticated(svc, row, given, caller);
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
    // An account without a password or an identity keeps its last passkey.
    await assertSignInMethodLeft(tx, userId);
    await factorChanged(tx, emit, svc, u!, { notice: `the passkey named “${gone[0]!.name}” was removed`, ip: caller.ip, now });
  });
}
