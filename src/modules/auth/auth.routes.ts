// /auth: register, login, refresh, logout.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import {
  EmailTokenBody,
  LoginBody,
  MailAcceptedSchema,
  MailRequestBody,
  RefreshBody,
  RegisterBody,
  RegisteredSchema,
  ResetPasswordBody,
  TokenPairSchema,
  VerifiedSchema,
} from './auth.schemas.js';
import { signInWithPassword } from '../../signin/password.js';
import { logout, refresh, registerUser, tokenPairFor } from './auth.service.js';
import { requestPasswordReset, resendVerification, resetPassword, verifyEmail } from './email.service.js';

const ACCEPTED = {
  resend: { status: 'accepted', message: 'If this address belongs to an account that is not verified yet, a new link is on its way.' },
  forgot: { status: 'accepted', message: 'If this address belongs to an account, a link to reset its password is on its way.' },
} as const;

// Token responses must never be cached (RFC 6749 §5.1): every route that answers a token pair sends these.
export const TOKEN_RESPONSE_HEADERS = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export const authRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .post(
      '/register',
      declareRoute({
        action: 'auth.register',
        personal: true,
        summary: 'Create an account',
        description:
          'A taken email is 409 email_taken, except with EMAIL_VERIFICATION=required: there a taken email gets the same 201 answer in about the same time (a user object that is not stored), and the address’s owner is mailed a notice, so registration tells nobody which addresses have accounts.',
        permission: 'auth:register',
        tags: ['auth'],
        body: true,
        responses: { 201: RegisteredSchema },
        errors: ['email_taken'],
      }),
      validate('json', RegisterBody),
      async (c) => {
        const user = await registerUser(svc, c.req.valid('json'), c.get('clientIp'));
        return c.json({ user }, 201);
      },
    )
    .post(
      '/login',
      declareRoute({
        action: 'auth.login',
        // The mfa_required problem carries an mfaToken.
        personal: true,
        summary: 'Sign in with email and password',
        description:
          'Failures per account+address, per address (IPv6: per /64) and per account across all addresses are limited; past a limit even the right password gets 429. A user with a second factor gets 401 mfa_required with `mfaToken` (single-use, 5 minutes) and `methods`; POST /auth/mfa/verify finishes the sign-in.',
        tags: ['auth'],
        body: true,
        responses: { 200: TokenPairSchema },
        errors: ['invalid_credentials', 'email_not_verified', 'mfa_required'],
      }),
      validate('json', LoginBody),
      async (c) => {
        const ip = c.get('clientIp');
        const authentication = await signInWithPassword(svc, { ...c.req.valid('json'), ip });
        const pair = await tokenPairFor(svc, authentication, { ip, userAgent: requestHeader(c, 'user-agent') ?? '' });
        return c.json(pair, 200, TOKEN_RESPONSE_HEADERS);
      },
    )
    .post(
      '/verify-email',
      declareRoute({
        action: 'auth.verify_email',
        personal: true,
        summary: 'Confirm an email address with the token from the mailed link',
        tags: ['auth'],
        body: true,
        responses: { 200: VerifiedSchema },
        errors: ['invalid_email_token'],
      }),
      validate('json', EmailTokenBody),
      async (c) => {
        const user = await verifyEmail(svc, c.req.valid('json').token);
        c.set('auditDetail', 'email_verified');
        c.set('auditActor', user.id);
        return c.json({ user }, 200);
      },
    )
    .post(
      '/verify-email/resend',
      declareRoute({
        action: 'auth.verify_email.resend',
        summary: 'Mail a new verification link (same answer whether or not the account exists)',
        description:
          'Always 202 with the same body and about the same time: the look-up happens after the response. At most MAIL_PER_ADDRESS_PER_HOUR mails per address from one client (all clients together: 10 times that, except from addresses the account signed in from).',
        tags: ['auth'],
        body: true,
        responses: { 202: MailAcceptedSchema },
      }),
      validate('json', MailRequestBody),
      async (c) => {
        const { email } = c.req.valid('json');
        const ip = c.get('clientIp');
        svc.background.run('verify-email resend', () => resendVerification(svc, email, ip));
        c.set('auditDetail', 'email_verification_requested');
        return c.json(ACCEPTED.resend, 202);
      },
    )
    .post(
      '/password/forgot',
      declareRoute({
        action: 'auth.password.forgot',
        summary: 'Mail a password-reset link (same answer whether or not the account exists)',
        description:
          'Always 202 with the same body and about the same time: the look-up, the token and the mail happen after the response. At most MAIL_PER_ADDRESS_PER_HOUR mails per address from one client (all clients together: 10 times that, except from addresses the account signed in from).',
        tags: ['auth'],
        body: true,
        responses: { 202: MailAcceptedSchema },
      }),
      validate('json', MailRequestBody),
      async (c) => {
        const { email } = c.req.valid('json');
        const ip = c.get('clientIp');
        svc.background.run('password forgot', () => requestPasswordReset(svc, email, ip));
        c.set('auditDetail', 'password_reset_requested');
        return c.json(ACCEPTED.forgot, 202);
      },
    )
    .post(
      '/password/reset',
      declareRoute({
        action: 'auth.password.reset',
        summary: 'Set a new password with the token from the mailed link',
        description:
          'The password follows the register rules. With TOTP on, `code` (a TOTP or recovery code) is needed too; when it is missing or wrong the token stays usable. Every session of the user ends, the sign-in lockout of the account is cleared and the address counts as verified; no tokens are issued. `removePasskeys: true` removes every passkey of the account too.',
        tags: ['auth'],
        body: true,
        responses: { 204: null },
        errors: ['invalid_email_token', 'mfa_code_required', { code: 'invalid_mfa_code', status: 403 }],
      }),
      validate('json', ResetPasswordBody),
      async (c) => {
        const { userId } = await resetPassword(svc, c.req.valid('json'), c.get('clientIp'));
        c.set('auditDetail', 'password_reset');
        c.set('auditActor', userId);
        return c.body(null, 204);
      },
    )
    .post(
      '/refresh',
      declareRoute({
        action: 'auth.refresh',
        summary: 'Rotate a refresh token for a new token pair',
        permission: 'auth:refresh',
        // Judged by the service on the refresh token's user, not on the caller.
        guard: null,
        tags: ['auth'],
        description:
          'Refresh tokens rotate. A spent token presented again revokes its whole session. The permission is judged on the refresh token’s user; no Bearer token is needed.',
        body: true,
        responses: { 200: TokenPairSchema },
        errors: ['refresh_token_reused', 'invalid_refresh_token', 'forbidden'],
      }),
      validate('json', RefreshBody),
      async (c) => {
        const pair = await refresh(svc, c.req.valid('json').refreshToken);
        return c.json(pair, 200, TOKEN_RESPONSE_HEADERS);
      },
    )
    .post(
      '/logout',
      declareRoute({
        action: 'auth.logout',
        beforeMfa: true,
        summary: 'End the refresh token’s session (idempotent)',
        tags: ['auth'],
        body: true,
        responses: { 204: null },
      }),
      validate('json', RefreshBody),
      async (c) => {
        await logout(svc, c.req.valid('json').refreshToken);
        return c.body(null, 204);
      },
    );
