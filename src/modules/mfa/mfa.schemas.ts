// Request and response schemas of second factors (TOTP, recovery codes) and
// the sign-in's MFA step.
import { z } from 'zod';
import { mfaCodeSchema } from '../../lib/schemas.js';
import { AuthenticationResponseSchema } from '../passkeys/passkeys.schemas.js';

// Required of a user who has a password (400 validation_failed without it, as
// before); a user without one proves a recent sign-in instead (signin/codes.ts).
const currentPassword = z.string().min(1).max(1024).optional();

// No step-up code: while TOTP is on, enrolling again is refused (409) before anything is checked.
export const EnrolTotpBody = z.strictObject({ currentPassword });
export const TotpEnrolmentSchema = z.object({
  /** Base32, for typing into an authenticator app. */
  secret: z.string(),
  /** otpauth://totp/... for a QR code. */
  otpauthUri: z.string(),
});

export const ConfirmTotpBody = z.strictObject({
  code: mfaCodeSchema,
  /** End every other session of the user (those signed in with the password alone); the current one stays. */
  endOtherSessions: z.boolean().optional(),
});
export const RecoveryCodesSchema = z.object({ recoveryCodes: z.array(z.string()) });

// `code` is required, but a missing one is the step-up's 403 mfa_code_required, not a 400.
export const DisableTotpBody = z.strictObject({ currentPassword, code: mfaCodeSchema.optional() });
export const RegenerateCodesBody = z.strictObject({ currentPassword, code: mfaCodeSchema.optional() });

const mfaToken = z.string().min(1).max(256);
export const MfaVerifyBody = z.union([
  z.strictObject({ mfaToken, code: mfaCodeSchema }),
  z.strictObject({ mfaToken, passkey: AuthenticationResponseSchema }),
]);
