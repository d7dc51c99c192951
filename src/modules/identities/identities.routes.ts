// /users/me/identities: the caller's identities at upstream identity
// providers (listed for the account page; unlinked after the step-up). Its
// list in the account export is registered here too.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { IdParam } from '../../lib/schemas.js';
import { ExportedIdentitySchema, IdentityListSchema, UnlinkIdentityBody } from './identities.schemas.js';
import { identitiesForExport, listIdentities, unlinkIdentity } from './identities.service.js';

export const identitiesRoutes = (svc: AppServices) => {
  // One's identities in the account export (after sessions); they are deleted with the account (by cascade).
  svc.contributions.registerOnce('identities', (c) => {
    c.addExportSection({ name: 'identities', item: ExportedIdentitySchema, rows: (userId) => identitiesForExport(svc, userId) });
  });
  return new Hono<AppEnv>()
    .get(
      '/me/identities',
      declareRoute({
        action: 'users.me.identities.list',
        personal: true,
        summary: 'Your identities at external identity providers, oldest link first',
        description:
          '`provider` is the provider’s id (as in /auth/external/:provider), `providerName` its label; `email` is what the provider last said.',
        permission: 'profile:read',
        tags: ['identities'],
        responses: { 200: IdentityListSchema },
      }),
      async (c) => c.json({ items: await listIdentities(svc, c.get('caller').userId) }, 200),
    )
    .delete(
      '/me/identities/:id',
      declareRoute({
        action: 'users.me.identities.unlink',
        personal: true,
        summary: 'Unlink one of your identities: it no longer signs you in',
        description:
          'A step-up action: the current password and, with TOTP on, `code` (checked under the sign-in limits); a user without a password proves a sign-in less than REAUTH_MAX_AGE_SECONDS old instead (else 403 reauthentication_required). The last way to sign in to the account (no password, no passkey, no other identity at an enabled provider) stays: 409 last_sign_in_method. The owner is told by mail.',
        permission: 'profile:update',
        tags: ['identities'],
        body: true,
        responses: { 204: null },
        errors: [
          { code: 'invalid_credentials', status: 403 },
          'mfa_code_required',
          { code: 'invalid_mfa_code', status: 403 },
          'reauthentication_required',
          'not_found',
          'last_sign_in_method',
        ],
      }),
      validate('param', IdParam),
      validate('json', UnlinkIdentityBody),
      async (c) => {
        const caller = c.get('caller');
        const { provider } = await unlinkIdentity(
          svc,
          { userId: caller.userId, sessionId: caller.sessionId, ip: c.get('clientIp') },
          c.req.valid('param').id,
          c.req.valid('json'),
        );
        c.set('auditDetail', `identity_unlinked: ${provider}`);
        return c.body(null, 204);
      },
    );
};
