// The second-factor strategy: the MFA step (mfa-step.ts) finished with a TOTP
// or recovery code (amr pwd+otp, or fed+otp after an identity provider) or a
// passkey of the step's user (pwd+hwk, fed+hwk).
import type { AppServices } from '../deps.js';
import { problem } from '../lib/problem.js';
import { authenticated, type Authentication } from './authentication.js';
import { spendCodeWithinLimits, type CodeKind } from './codes.js';
import { failStep, takeStep, type MfaStep } from './mfa-step.js';
import { verifyAssertion, type PasskeyAssertion } from './passkey.js';

/**
 * The MFA step's answer: a code (TOTP or recovery code) or a passkey assertion
 * for the step's user. A wrong answer is 401 invalid_mfa_code (or
 * invalid_passkey) and counts as a failed sign-in of the account; the 5th
 * kills the token. The rules of admit() were applied when the step began.
 */
export async function finishWithSecondFactor(
  svc: AppServices,
  step: MfaStep,
  input: { code?: string | undefined; passkey?: PasskeyAssertion | undefined },
  ip: string,
): Promise<{ authentication: Authentication; method: CodeKind | 'passkey' }> {
  const { hash, pending } = step;
  let method: CodeKind | 'passkey' | null = null;
  try {
    if (input.passkey !== undefined) {
      await verifyAssertion(svc, input.passkey, { kind: 'mfa', userId: pending.userId, mfaTokenHash: hash });
      method = 'passkey';
    } else {
      method = await spendCodeWithinLimits(svc, { userId: pending.userId, email: pending.email, ip }, input.code ?? '');
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'invalid_passkey') {
      await failStep(svc, hash);
      svc.stats.add('auth.loginFailed');
    }
    throw err;
  }
  if (method === null) {
    await failStep(svc, hash);
    svc.stats.add('auth.loginFailed');
    problem('invalid_mfa_code', 'The code is wrong or was already used', { audit: 'mfa_failed' });
  }
  await takeStep(svc, hash);
  const first = pending.firstFactor === 'fed' ? 'fed' : 'pwd';
  return { authentication: authenticated(svc, pending.userId, [first, method === 'passkey' ? 'hwk' : 'otp']), method };
}
