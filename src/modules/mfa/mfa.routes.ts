// Second factors: /users/me/mfa/... (TOTP, recovery codes), an admin's
// DELETE /users/:id/mfa, and the sign-in's MFA step at /auth/mfa/verify.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { IdParam } from '../../lib/schemas.js';
import { TokenPairSchema } from '../auth/auth.schemas.js';
import { TOKEN_RESPONSE_HEADERS } from '../auth/auth.routes.js';
import { tokenPairFor } from '../auth/auth.service.js';
import {
  ConfirmTotpBody,
  DisableTotpBody,
  EnrolTotpBody,
  MfaVerifyBody,
  RecoveryCodesSchema,
  RegenerateCodesBody,
  TotpEnrolmentSchema,
} from './mfa.schemas.js';
import { pendingStep } from '../../signin/mfa-step.js';
import { finishWithSecondFactor } from '../../signin/second-factor.js';
import { confirmTotp, disableTotp, enrolTotp, regenerateRecoveryCodes, resetMfa } from './mfa.service.js';

const STEP_UP = ['mfa_code_required', { code: 'invalid_mfa_code', status: 403 }, 'reauthentication_required'] as const;
const NO_PASSWORD =
  ' A user without a password proves a sign-in less than REAUTH_MAX_AGE_SECONDS old instead (else 403 reauthentication_required).';

export const mfaAccountRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .post(
      '/me/mfa/totp',
      declareRoute({
        action: 'users.me.mfa.totp.enrol',
        personal: true,
        beforeMfa: true,
        summary: 'Start TOTP enrolment: a pending secret and its otpauth:// URI',
        description:
          'Not in force until confirmed with a code (POST /users/me/mfa/totp/confirm); a new call replaces a pending secret. Needs the current password (under the sign-in limits).' +
          NO_PASSWORD,
        permission: 'profile:update',
        tags: ['mfa'],
        body: true,
        responses: { 200: TotpEnrolmentSchema },
        errors: [{ code: 'invalid_credentials', status: 403 }, 'reauthentication_required', 'mfa_already_enabled'],
      }),
      validate('json', EnrolTotpBody),
      async (c) => {
        const { userId, sessionId } = c.get('caller');
        const out = await enrolTotp(svc, { userId, sessionId, ip: c.get('clientIp') }, c.req.valid('json'));
        c.set('auditDetail', 'mfa_totp_pending');
        return c.json(out, 200);
      },
    )
    .post(
      '/me/mfa/totp/confirm',
      declareRoute({
        action: 'users.me.mfa.totp.confirm',
        personal: true,
        beforeMfa: true,
        summary: 'Turn TOTP on with a code from the app; returns the recovery codes, shown this once',
        description:
          'The code is checked under the sign-in limits (a wrong one counts as a failed sign-in; past them: 429). `endOtherSessions: true` ends every other session of the user (signed in with the password alone).',
        permission: 'profile:update',
        tags: ['mfa'],
        body: true,
        responses: { 200: RecoveryCodesSchema },
        errors: [{ code: 'invalid_mfa_code', status: 400 }, 'mfa_already_enabled', 'mfa_not_enabled'],
      }),
      validate('json', ConfirmTotpBody),
      async (c) => {
        const caller = c.get('caller');
        const out = await confirmTotp(
          svc,
          { userId: caller.userId, sessionId: caller.sessionId, ip: c.get('clientIp') },
          c.req.valid('json'),
        );
        c.set('auditDetail', 'mfa_enabled: totp');
        return c.json(out, 200);
      },
    )
    .delete(
      '/me/mfa/totp',
      declareRoute({
        action: 'users.me.mfa.totp.disable',
        personal: true,
        beforeMfa: true,
        summary: 'Turn TOTP off (current password and a TOTP or recovery code)',
        description: `The current password and a code (TOTP or recovery), checked under the sign-in limits.${NO_PASSWORD}`,
        permission: 'profile:update',
        tags: ['mfa'],
        body: true,
        responses: { 204: null },
        errors: [{ code: 'invalid_credentials', status: 403 }, ...STEP_UP, 'mfa_not_enabled'],
      }),
      validate('json', DisableTotpBody),
      async (c) => {
        const { userId, sessionId } = c.get('caller');
        await disableTotp(svc, { userId, sessionId, ip: c.get('clientIp') }, c.req.valid('json'));
        c.set('auditDetail', 'mfa_disabled: totp');
        return c.body(null, 204);
      },
    )
    .post(
      '/me/mfa/recovery-codes',
      declareRoute({
        action: 'users.me.mfa.recovery_codes',
        personal: true,
        beforeMfa: true,
        summary: 'A new set of 10 recovery codes (the old ones stop working)',
        description: `Needs a second factor (TOTP or a passkey), the current password and, with TOTP on, a code.${NO_PASSWORD}`,
        permission: 'profile:update',
        tags: ['mfa'],
        body: true,
        responses: { 200: RecoveryCodesSchema },
        errors: [{ code: 'invalid_credentials', status: 403 }, ...STEP_UP, 'mfa_not_enabled'],
      }),
      validate('json', RegenerateCodesBody),
      async (c) => {
        const { userId, sessionId } = c.get('caller');
        const out = await regenerateRecoveryCodes(svc, { userId, sessionId, ip: c.get('clientIp') }, c.req.valid('json'));
        c.set('auditDetail', 'mfa_recovery_codes_replaced');
        return c.json(out, 200);
      },
    )
    .delete(
      '/:id/mfa',
      declareRoute({
        action: 'users.mfa.reset',
        personal: true,
        summary: 'Remove a user’s second factors (TOTP, recovery codes, passkeys) and end their sessions',
        description:
          'For a user who lost their device. Only a holder of `admin` resets an admin, and nobody resets a user holding a permission they do not hold (403 forbidden).',
        permission: 'users:mfa:reset',
        tags: ['mfa'],
        body: true,
        responses: { 204: null },
        errors: ['not_found'],
      }),
      validate('param', IdParam),
      async (c) => {
        await resetMfa(svc, c.get('caller'), c.req.valid('param').id, c.get('clientIp'));
        c.set('auditDetail', 'mfa_reset');
        return c.body(null, 204);
      },
    );

export const mfaLoginRoutes = (svc: AppServices) =>
  new Hono<AppEnv>().post(
    '/mfa/verify',
    declareRoute({
      action: 'auth.mfa.verify',
      personal: true,
      summary: 'Finish a sign-in: the mfaToken from 401 mfa_required and a code or a passkey assertion',
      description:
        'A code is a TOTP code (each time step works once) or a recovery code (once each). A passkey assertion answers the challenge of POST /auth/passkey/options with this mfaToken. A wrong answer counts as a failed sign-in; after 5 the mfaToken is dead.',
      tags: ['auth', 'mfa'],
      body: true,
      responses: { 200: TokenPairSchema },
      errors: ['invalid_mfa_token', 'invalid_mfa_code', { code: 'invalid_passkey', status: 401 }],
    }),
    validate('json', MfaVerifyBody),
    async (c) => {
      const input = c.req.valid('json');
      const step = await pendingStep(svc, input.mfaToken);
      c.set('auditActor', step.pending.userId);
      const ip = c.get('clientIp');
      const { authentication, method } = await finishWithSecondFactor(
        svc,
        step,
        { code: 'code' in input ? input.code : undefined, passkey: 'passkey' in input ? input.passkey : undefined },
        ip,
      );
      const pair = await tokenPairFor(svc, authentication, { ip, userAgent: requestHeader(c, 'user-agent') ?? '' });
      c.set('auditDetail', `mfa_verified: ${method}`);
      return c.json(pair, 200, TOKEN_RESPONSE_HEADERS);
    },
  );
