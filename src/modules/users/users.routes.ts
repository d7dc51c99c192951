// /users: one's own profile, other users, and role assignment.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { IdParam } from '../../lib/schemas.js';
import {
  AssignRolesBody,
  DeleteMeBody,
  exportSchema,
  ListUsersQuery,
  MeSchema,
  UpdateMeBody,
  UserListSchema,
  UserSchema,
} from './users.schemas.js';
import type { z } from 'zod';
import { jsonText } from '../../lib/json-text.js';
import { MeBodies, profileRead } from './users.cache.js';
import { exportAccount } from './users.export.js';
import { assignRoles, deleteMe, deleteUser, getMe, getUser, listUsers, sortedPermissions, updateMe } from './users.service.js';

type Me = z.infer<typeof MeSchema>;

/** The lists other modules add to the export, for its description ("<name> and " each). */
const exportedLists = (svc: AppServices) => svc.contributions.exportSections.map((s) => `${s.name} and `).join('');

export const usersRoutes = (svc: AppServices, meBodies = new MeBodies()) =>
  new Hono<AppEnv>()
    .get(
      '/me',
      declareRoute({
        action: 'users.me.read',
        personal: true,
        beforeMfa: true,
        summary: 'Your profile and effective permissions',
        permission: 'profile:read',
        tags: ['users'],
        responses: { 200: MeSchema },
        errors: ['not_found'],
        storeReads: [profileRead],
      }),
      async (c) => {
        const caller = c.get('caller');
        const raw = c.get('storeValues')[profileRead.name];
        const known = meBodies.get(caller.userId, raw, caller.roles, caller.permissions);
        if (known !== undefined) return jsonText<Me>(c, known);
        const me: Me = { ...(await getMe(svc, caller, raw)), permissions: sortedPermissions(caller.permissions) };
        const body = JSON.stringify(me);
        // Only a body built from the stored profile is kept (its string is what later requests compare).
        if (raw != null) meBodies.set(caller.userId, { profile: raw, roles: caller.roles, permissions: caller.permissions, body });
        return jsonText<Me>(c, body);
      },
    )
    .put(
      '/me',
      declareRoute({
        action: 'users.me.update',
        personal: true,
        summary: 'Change your name, email or password',
        permission: 'profile:update',
        tags: ['users'],
        body: true,
        responses: { 200: UserSchema },
        errors: [
          'current_password_required',
          { code: 'invalid_credentials', status: 403 },
          'mfa_code_required',
          { code: 'invalid_mfa_code', status: 403 },
          'reauthentication_required',
          'email_taken',
          'not_found',
        ],
        description:
          'Changing the email or password needs currentPassword and, with TOTP on, `code` (a TOTP or recovery code), checked under the sign-in limits (past them: 429). A user without a password proves a sign-in less than REAUTH_MAX_AGE_SECONDS old instead (else 403 reauthentication_required), and so sets a first password. A password change ends every other session; with `removePasskeys: true` it removes every passkey too (without `password`: 400).',
      }),
      validate('json', UpdateMeBody),
      async (c) => {
        const caller = c.get('caller');
        const input = c.req.valid('json');
        const user = await updateMe(svc, { userId: caller.userId, sessionId: caller.sessionId, ip: c.get('clientIp') }, input);
        if (input.password !== undefined) c.set('auditDetail', 'password_changed');
        else if (input.email !== undefined) c.set('auditDetail', 'email_changed');
        return c.json(user, 200);
      },
    )
    .delete(
      '/me',
      declareRoute({
        action: 'users.me.delete',
        personal: true,
        summary: 'Delete your account',
        description:
          'Needs the current password and, with TOTP on, `code` (checked under the sign-in limits); a user without a password, a sign-in less than REAUTH_MAX_AGE_SECONDS old (else 403 reauthentication_required). The account, its sessions, factors and posts are deleted; audit entries keep only the actor id.',
        permission: 'profile:update',
        tags: ['users'],
        body: true,
        responses: { 204: null },
        errors: [
          { code: 'invalid_credentials', status: 403 },
          'mfa_code_required',
          { code: 'invalid_mfa_code', status: 403 },
          'reauthentication_required',
          'last_admin',
          'not_found',
        ],
      }),
      validate('json', DeleteMeBody),
      async (c) => {
        const caller = c.get('caller');
        await deleteMe(svc, { ...caller, ip: c.get('clientIp') }, c.req.valid('json'));
        c.set('auditDetail', 'user_deleted: self');
        return c.body(null, 204);
      },
    )
    .get(
      '/me/export',
      declareRoute({
        action: 'users.me.export',
        personal: true,
        summary: 'Download everything the service holds about you (one JSON document)',
        description: `Profile, roles, sessions, second factors (names and dates only), pending mailed links (kind and dates), ${exportedLists(svc)}your own audit entries of the last AUDIT_RETENTION_DAYS days. Streamed; served as an attachment.`,
        permission: 'profile:read',
        tags: ['users'],
        responses: { 200: exportSchema(svc.contributions.exportSections) },
        errors: ['not_found'],
      }),
      async (c) => {
        const userId = c.get('caller').userId;
        const chunks = await exportAccount(svc, userId);
        const encoder = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            try {
              const next = await chunks.next();
              if (next.done) controller.close();
              else controller.enqueue(encoder.encode(next.value));
            } catch (err) {
              svc.logger.error({ err }, 'export failed while streaming');
              controller.error(err);
            }
          },
          async cancel() {
            await chunks.return(undefined);
          },
        });
        c.set('auditDetail', 'user_exported');
        return c.body(body, 200, {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Disposition': `attachment; filename="auth-system-export-${userId}.json"`,
        });
      },
    )
    .get(
      '/',
      declareRoute({
        action: 'users.list',
        personal: true,
        summary: 'List users, newest first (filter by role, search email or name)',
        permission: 'users:read',
        tags: ['users'],
        responses: { 200: UserListSchema },
      }),
      validate('query', ListUsersQuery),
      async (c) => c.json(await listUsers(svc, c.req.valid('query')), 200),
    )
    .get(
      '/:id',
      declareRoute({
        action: 'users.read',
        personal: true,
        summary: 'Read a user',
        permission: 'users:read',
        tags: ['users'],
        responses: { 200: UserSchema },
        errors: ['not_found'],
      }),
      validate('param', IdParam),
      async (c) => c.json(await getUser(svc, c.req.valid('param').id), 200),
    )
    .delete(
      '/:id',
      declareRoute({
        action: 'users.delete',
        personal: true,
        summary: 'Delete a user',
        description:
          'The user, their sessions, factors and posts are deleted (in force on the next request); audit entries keep only the actor id. Only a holder of `admin` deletes an admin, and nobody deletes a user holding a permission they do not hold (403 forbidden).',
        permission: 'users:delete',
        tags: ['users'],
        body: true,
        responses: { 204: null },
        errors: ['not_found', 'last_admin'],
      }),
      validate('param', IdParam),
      async (c) => {
        await deleteUser(svc, c.get('caller'), c.req.valid('param').id);
        c.set('auditDetail', 'user_deleted');
        return c.body(null, 204);
      },
    )
    .put(
      '/:id/roles',
      declareRoute({
        action: 'users.roles.assign',
        personal: true,
        summary: 'Replace a user’s roles',
        permission: 'users:roles:assign',
        tags: ['users'],
        body: true,
        responses: { 200: UserSchema },
        errors: ['not_found', 'unknown_role', 'last_admin'],
        description:
          'Only a holder of `admin` may grant or remove `admin`; a role that carries a permission the caller does not hold cannot be granted, and the roles of a user holding such a permission cannot be changed (403 forbidden, naming it).',
      }),
      validate('param', IdParam),
      validate('json', AssignRolesBody),
      async (c) => {
        const user = await assignRoles(svc, c.get('caller'), c.req.valid('param').id, c.req.valid('json').roles);
        c.set('auditDetail', `role_assigned: ${user.roles.join(',')}`);
        return c.json(user, 200);
      },
    );
