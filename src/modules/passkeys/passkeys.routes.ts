// Passkeys: /users/me/passkeys/... (register, list, remove) and the
// passwordless sign-in at /auth/passkey/... (also the MFA step's options).
import { Hono } from 'hono';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { IdParam } from '../../lib/schemas.js';
import { TokenPairSchema } from '../auth/auth.schemas.js';
import { TOKEN_RESPONSE_HEADERS } from '../auth/auth.routes.js';
import { tokenPairFor } from '../auth/auth.service.js';
import { pendingStep } from '../../signin/mfa-step.js';
import { authenticationOptions, signInWithPasskey } from '../../signin/passkey.js';
import {
  AddPasskeyBody,
  CreationOptionsSchema,
  PasskeyListSchema,
  PasskeyLoginBody,
  PasskeyOptionsBody,
  PasskeySchema,
  PasskeyStepUpBody,
  RequestOptionsSchema,
} from './passkeys.schemas.js';
import { addPasskey, listPasskeys, registrationOptions, removePasskey } from './passkeys.service.js';

/** The step-up's refusals (as on the MFA routes), past the sign-in limits 429. */
const STEP_UP = [
  { code: 'invalid_credentials', status: 403 },
  'mfa_code_required',
  { code: 'invalid_mfa_code', status: 403 },
  'reauthentication_required',
] as const;
const NO_PASSWORD =
  ' A user without a password proves a sign-in less than REAUTH_MAX_AGE_SECONDS old instead (else 403 reauthentication_required).';

export const passkeyAccountRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .post(
      '/me/passkeys/options',
      declareRoute({
        action: 'users.me.passkeys.options',
        personal: true,
        beforeMfa: true,
        summary: 'Options for navigator.credentials.create(): a new passkey for your account',
        description:
          'Adding a way to sign in is a step-up action: needs the current password and, with TOTP on, `code` (a TOTP or recovery code), checked under the sign-in limits (past them: 429). The challenge answers once, within 5 minutes, and only POST /users/me/passkeys of this user. User verification and a resident key are preferred.' +
          NO_PASSWORD,
        permission: 'profile:update',
        tags: ['passkeys'],
        body: true,
        responses: { 200: CreationOptionsSchema },
        errors: [...STEP_UP],
      }),
      validate('json', PasskeyStepUpBody),
      async (c) =>
        c.json(
          await registrationOptions(
            svc,
            { userId: c.get('caller').userId, sessionId: c.get('caller').sessionId, ip: c.get('clientIp') },
            c.req.valid('json'),
          ),
          200,
        ),
    )
    .post(
      '/me/passkeys',
      declareRoute({
        action: 'users.me.passkeys.add',
        personal: true,
        beforeMfa: true,
        summary: 'Register a passkey: the name you give it and the browser’s registration response',
        description:
          'The response answers the challenge of a stepped-up POST /users/me/passkeys/options of yours. `endOtherSessions: true` ends every other session of yours at once (this one stays).',
        permission: 'profile:update',
        tags: ['passkeys'],
        body: true,
        responses: { 201: PasskeySchema },
        errors: ['invalid_passkey'],
      }),
      validate('json', AddPasskeyBody),
      async (c) => {
        const { name, response, endOtherSessions } = c.req.valid('json');
        const caller = c.get('caller');
        const passkey = await addPasskey(
          svc,
          { userId: caller.userId, sessionId: caller.sessionId, ip: c.get('clientIp') },
          { name, response: response as RegistrationResponseJSON, endOtherSessions },
        );
        c.set('auditDetail', 'passkey_added');
        return c.json(passkey, 201);
      },
    )
    .get(
      '/me/passkeys',
      declareRoute({
        action: 'users.me.passkeys.list',
        personal: true,
        beforeMfa: true,
        summary: 'Your passkeys, newest first',
        permission: 'profile:read',
        tags: ['passkeys'],
        responses: { 200: PasskeyListSchema },
      }),
      async (c) => c.json({ items: await listPasskeys(svc, c.get('caller').userId) }, 200),
    )
    .delete(
      '/me/passkeys/:id',
      declareRoute({
        action: 'users.me.passkeys.remove',
        personal: true,
        beforeMfa: true,
        summary: 'Remove one of your passkeys',
        description:
          'A step-up action: needs the current password and, with TOTP on, `code` (a TOTP or recovery code), checked under the sign-in limits (past them: 429).' +
          NO_PASSWORD +
          ' Removing the last passkey of an account that has no password and no identity: 409 last_sign_in_method.',
        permission: 'profile:update',
        tags: ['passkeys'],
        body: true,
        responses: { 204: null },
        errors: [...STEP_UP, 'passkey_not_found', 'last_sign_in_method'],
      }),
      validate('param', IdParam),
      validate('json', PasskeyStepUpBody),
      async (c) => {
        const caller = c.get('caller');
        await removePasskey(
          svc,
          { userId: caller.userId, sessionId: caller.sessionId, ip: c.get('clientIp') },
          c.req.valid('param').id,
          c.req.valid('json'),
        );
        c.set('auditDetail', 'passkey_removed');
        return c.body(null, 204);
      },
    );

export const passkeyLoginRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .post(
      '/passkey/options',
      declareRoute({
        action: 'auth.passkey.options',
        summary: 'Options for navigator.credentials.get(): a passwordless sign-in, or the MFA step’s passkey',
        description:
          'With `mfaToken`: that sign-in’s passkeys, for POST /auth/mfa/verify. With `email`: that account’s passkeys (an address without any gets a decoy, so the answer tells nothing). With neither: any passkey the browser holds for this site.',
        tags: ['auth', 'passkeys'],
        body: true,
        responses: { 200: RequestOptionsSchema },
        errors: ['invalid_mfa_token'],
      }),
      validate('json', PasskeyOptionsBody),
      async (c) => {
        const input = c.req.valid('json');
        if ('mfaToken' in input) {
          const { hash, pending } = await pendingStep(svc, input.mfaToken);
          return c.json(await authenticationOptions(svc, { mfa: { userId: pending.userId, mfaTokenHash: hash } }), 200);
        }
        return c.json(await authenticationOptions(svc, { email: input.email }), 200);
      },
    )
    .post(
      '/passkey/login',
      declareRoute({
        action: 'auth.passkey.login',
        personal: true,
        summary: 'Sign in with a passkey (no password; amr ["hwk"])',
        description: 'The response answers a challenge of POST /auth/passkey/options (once). User verification on the device is required.',
        tags: ['auth', 'passkeys'],
        body: true,
        responses: { 200: TokenPairSchema },
        errors: [{ code: 'invalid_passkey', status: 401 }, 'email_not_verified'],
      }),
      validate('json', PasskeyLoginBody),
      async (c) => {
        const authentication = await signInWithPasskey(svc, c.req.valid('json').response);
        const pair = await tokenPairFor(svc, authentication, { ip: c.get('clientIp'), userAgent: requestHeader(c, 'user-agent') ?? '' });
        c.set('auditActor', authentication.userId);
        c.set('auditDetail', 'passkey_login');
        return c.json(pair, 200, TOKEN_RESPONSE_HEADERS);
      },
    );
