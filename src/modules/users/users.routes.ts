// /users: one's own profile, other users, and role assignment.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { IdParam } from '../../lib/schemas.js';
import { AssignRolesBody, ListUsersQuery, MeSchema, UpdateMeBody, UserListSchema, UserSchema } from './users.schemas.js';
import { profileRead } from './users.cache.js';
import { assignRoles, getMe, getUser, listUsers, sortedPermissions, updateMe } from './users.service.js';

export const usersRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .get(
      '/me',
      declareRoute({
        action: 'users.me.read',
        personal: true,
        summary: 'Your profile and effective permissions',
        permission: 'profile:read',
        tags: ['users'],
        responses: { 200: MeSchema },
        errors: ['not_found'],
        storeReads: [profileRead],
      }),
      async (c) => {
        const caller = c.get('caller');
        const user = await getMe(svc, caller, c.get('storeValues')[profileRead.name]);
        return c.json({ ...user, permissions: sortedPermissions(caller.permissions) }, 200);
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
        errors: ['current_password_required', { code: 'invalid_credentials', status: 403 }, 'email_taken', 'not_found'],
        description:
          'Changing the email or password needs currentPassword, checked under the sign-in limits (past them: 429). A password change ends every other session.',
      }),
      validate('json', UpdateMeBody),
      async (c) => {
        const caller = c.get('caller');
        const input = c.req.valid('json');
        const user = await updateMe(svc, { userId: caller.userId!, sessionId: caller.sessionId!, ip: c.get('clientIp') }, input);
        if (input.password !== undefined) c.set('auditDetail', 'password_changed');
        else if (input.email !== undefined) c.set('auditDetail', 'email_changed');
        return c.json(user, 200);
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
          'Only a holder of `admin` may grant or remove `admin`; a role that carries a permission the caller does not hold cannot be granted (403 forbidden, naming it).',
      }),
      validate('param', IdParam),
      validate('json', AssignRolesBody),
      async (c) => {
        const user = await assignRoles(svc, c.get('caller'), c.req.valid('param').id, c.req.valid('json').roles);
        c.set('auditDetail', `role_assigned: ${user.roles.join(',')}`);
        return c.json(user, 200);
      },
    );
