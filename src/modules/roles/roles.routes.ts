// /roles and /permissions: the catalogue and role administration.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { CreateRoleBody, PermissionListSchema, RoleListSchema, RoleParam, RoleSchema, SetPermissionsBody } from './roles.schemas.js';
import { createRole, deleteRole, listPermissions, listRoles, setRolePermissions } from './roles.service.js';

export const rolesRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .get(
      '/roles',
      declareRoute({
        action: 'roles.list',
        summary: 'List roles with their permissions and member counts',
        permission: 'roles:read',
        tags: ['roles'],
        responses: { 200: RoleListSchema },
      }),
      async (c) => c.json(await listRoles(svc), 200),
    )
    .get(
      '/permissions',
      declareRoute({
        action: 'permissions.list',
        summary: 'The permission catalogue',
        permission: 'roles:read',
        tags: ['roles'],
        responses: { 200: PermissionListSchema },
      }),
      (c) => c.json(listPermissions(), 200),
    )
    .post(
      '/roles',
      declareRoute({
        action: 'roles.create',
        summary: 'Create a role',
        permission: 'roles:create',
        tags: ['roles'],
        body: true,
        responses: { 201: RoleSchema },
        errors: ['role_exists', 'unknown_permission'],
      }),
      validate('json', CreateRoleBody),
      async (c) => {
        const role = await createRole(svc, c.get('caller'), c.req.valid('json'));
        c.set('auditDetail', `role_created: ${role.name}`);
        return c.json(role, 201);
      },
    )
    .put(
      '/roles/:role/permissions',
      declareRoute({
        action: 'roles.update',
        summary: 'Replace a role’s permissions',
        permission: 'roles:update',
        tags: ['roles'],
        body: true,
        responses: { 200: RoleSchema },
        errors: ['not_found', 'unknown_permission', 'role_locked'],
      }),
      validate('param', RoleParam),
      validate('json', SetPermissionsBody),
      async (c) => {
        const role = await setRolePermissions(svc, c.get('caller'), c.req.valid('param').role, c.req.valid('json').permissions);
        c.set('auditDetail', `role_permissions_changed: ${role.name}`);
        return c.json(role, 200);
      },
    )
    .delete(
      '/roles/:role',
      declareRoute({
        action: 'roles.delete',
        summary: 'Delete a custom role (members lose it)',
        body: true,
        permission: 'roles:update',
        tags: ['roles'],
        responses: { 204: null },
        errors: ['not_found', 'role_locked'],
      }),
      validate('param', RoleParam),
      async (c) => {
        const { role } = c.req.valid('param');
        await deleteRole(svc, role);
        c.set('auditDetail', `role_deleted: ${role}`);
        return c.body(null, 204);
      },
    );
