// Request and response schemas of the roles module.
import { z } from 'zod';
import { PLAIN_TEXT, roleNameSchema, singleLine } from '../../lib/schemas.js';

export const RoleSchema = z.object({
  name: z.string(),
  description: z.string(),
  permissions: z.array(z.string()),
  builtIn: z.boolean(),
  userCount: z.number().int(),
});
export type Role = z.infer<typeof RoleSchema>;

export const RoleListSchema = z.object({ items: z.array(RoleSchema) });
export const PermissionListSchema = z.object({
  items: z.array(z.object({ name: z.string(), description: z.string() })),
});

const permissionList = z.array(z.string().min(1).max(100).refine(singleLine, PLAIN_TEXT)).max(100);

export const CreateRoleBody = z.strictObject({
  name: roleNameSchema,
  description: z.string().trim().max(500).refine(singleLine, PLAIN_TEXT).optional(),
  permissions: permissionList.optional(),
});

export const SetPermissionsBody = z.strictObject({ permissions: permissionList });

export const RoleParam = z.strictObject({ role: z.string().min(1).max(40).refine(singleLine, PLAIN_TEXT) });
