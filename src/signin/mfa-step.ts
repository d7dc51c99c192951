// The MFA step of a sign-in: a right password of a user with a second factor
// gets an mfaToken (opaque, single-use, 5 minutes) instead of an
// Authentication. The step's state is in the shared store, keyed by the
// token's hash, so any instance can finish it (second-factor.ts); the token is
// taken by the right answer, and dies after 5 wrong ones.
import { and, count, eq, isNull } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { recoveryCodes, type users } from '../db/schema.js';
import { problem } from '../lib/problem.js';
import { hashOpaqueToken, newOpaqueToken } from '../security/opaque-tokens.js';
import { storeKeys } from '../store/store.js';

type UserRow = typeof users.$inferSelect;
export type MfaMethod = 'totp' | 'recovery_code' | 'passkey';
/** How the first factor was proved: a password, or an upstream identity provider (the step's amr starts with it). */
export type FirstFactor = 'pwd' | 'fed';
export type PendingMfa = { userId: string; email: string; methods: MfaMethod[]; firstFactor?: FirstFactor };
/** An mfaToken's step, as pendingStep() found it. */
export type MfaStep = { hash: string; pending: PendingMfa };

export const MFA_TOKEN_TTL_MS = 5 * 60_000;
export const MAX_MFA_FAILURES = 5;

/** The second factors this user can answer with, in the contract's order. */
async function methodsOf(svc: AppServices, u: UserRow): Promise<MfaMethod[]> {
  const [codes] = await svc.database.db
    .select({ n: count() })
    .from(recoveryCodes)
    .where(and(eq(recoveryCodes.userId, u.id), isNull(recoveryCodes.usedAt)));
  const out: MfaMethod[] = [];
  if (u.totpEnabledAt !== null) out.push('totp');
  if ((codes?.n ?? 0) > 0) out.push('recovery_code');
  if (u.passkeyCount > 0) out.push('passkey');
  return out;
}

/** First factor right, second factor next: answers 401 mfa_required with a new mfaToken and the user's methods. */
export async function requireSecondFactor(svc: AppServices, u: UserRow, firstFactor: FirstFactor = 'pwd'): Promise<never> {
  const methods = await methodsOf(svc, u);
  const mfaToken = newOpaqueToken();
  const pending: PendingMfa = { userId: u.id, email: u.email, methods, ...(firstFactor === 'pwd' ? {} : { firstFactor }) };
  const stored = await svc.store.set(storeKeys.mfaToken(hashOpaqueToken(mfaToken)), JSON.stringify(pending), { ttlMs: MFA_TOKEN_TTL_MS });
  if (!stored) problem('service_unavailable', 'The sign-in step could not be saved: try again shortly');
  problem('mfa_required', 'The password is right; a second factor is needed: POST /auth/mfa/verify with this mfaToken', {
    audit: 'mfa_required',
    actor: u.id,
    members: { mfaToken, methods },
  });
}

const INVALID_TOKEN = 'The MFA token is unknown, expired, used or has had too many wrong codes: sign in again';

/** The pending step of an mfaToken (not taken), or 401 invalid_mfa_token. */
export async function pendingStep(svc: AppServices, mfaToken: string): Promise<MfaStep> {
  const hash = hashOpaqueToken(mfaToken);
  const raw = await svc.store.get(storeKeys.mfaToken(hash));
  let pending: PendingMfa | null = null;
  try {
    pending = raw === null ? null : (JSON.parse(raw) as PendingMfa);
  } catch {
    pending = null;
  }
  if (pending === null || typeof pending.userId !== 'string') problem('invalid_mfa_token', INVALID_TOKEN);
  return { hash, pending };
}

/** A wrong answer: counted; the 5th kills the token. */
export async function failStep(svc: AppServices, hash: string): Promise<void> {
  const { count: n } = await svc.store.hit(storeKeys.mfaFailures(hash), MFA_TOKEN_TTL_MS);
  if (n >= MAX_MFA_FAILURES) await svc.store.del(storeKeys.mfaToken(hash));
}

/** A right answer: the token is taken; of two right answers at once, one wins. */
export async function takeStep(svc: AppServices, hash: string): Promise<void> {
  const taken = await svc.store.take(storeKeys.mfaToken(hash));
  if (taken === null) problem('invalid_mfa_token', INVALID_TOKEN);
  await svc.store.del(storeKeys.mfaFailures(hash));
}
