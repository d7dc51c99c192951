// Request and response schemas of the users module (and the User shape that
// auth returns too).
import { z } from 'zod';
import type { ExportSection } from '../../lib/contributions.js';
import { emailSchema, limitSchema, mfaCodeSchema, nameSchema, newPasswordSchema, PLAIN_TEXT, singleLine } from '../../lib/schemas.js';

export const MfaSummarySchema = z.object({ totp: z.boolean(), passkeys: z.number().int() });

export const UserSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  emailVerified: z.boolean(),
  name: z.string(),
  roles: z.array(z.string()),
  mfa: MfaSummarySchema,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type User = z.infer<typeof UserSchema>;

export const MeSchema = UserSchema.extend({ permissions: z.array(z.string()) });

export const UpdateMeBody = z
  .strictObject({
    name: nameSchema.optional(),
    email: emailSchema.optional(),
    password: newPasswordSchema.optional(),
    currentPassword: z.string().max(1024).optional(),
    code: mfaCodeSchema.optional(),
    /** With a password change: remove every passkey of the account too. */
    removePasskeys: z.boolean().optional(),
  })
  .refine((b) => b.removePasskeys !== true || b.password !== undefined, {
    path: ['removePasskeys'],
    message: 'Passkeys are removed with a password change: give the new password too',
  });

/** currentPassword: required of a user who has a password (400 without it); a user without one proves a recent sign-in instead. */
export const DeleteMeBody = z.strictObject({ currentPassword: z.string().min(1).max(1024).optional(), code: mfaCodeSchema.optional() });

/**
 * The export document's shape, for the OpenAPI document (the route streams it),
 * with the lists other modules register between `sessions` and `auditLog`.
 */
export const exportSchema = (sections: readonly ExportSection[]) =>
  z.object({
    format: z.string(),
    exportedAt: z.iso.datetime(),
    profile: UserSchema,
    roles: z.array(z.string()),
    factors: z.object({
      totp: z.object({ enabled: z.boolean(), enabledAt: z.iso.datetime().nullable(), createdAt: z.iso.datetime() }).nullable(),
      passkeys: z.array(z.object({ id: z.uuid(), name: z.string(), createdAt: z.iso.datetime(), lastUsedAt: z.iso.datetime().nullable() })),
      recoveryCodes: z.object({ createdAt: z.iso.datetime(), remaining: z.number().int() }).nullable(),
    }),
    pendingEmailLinks: z.array(z.object({ kind: z.string(), email: z.string(), createdAt: z.string(), expiresAt: z.string() })),
    sessions: z.array(z.record(z.string(), z.unknown())),
    ...Object.fromEntries(sections.map((s) => [s.name, z.array(s.item)])),
    auditLog: z.array(z.record(z.string(), z.unknown())),
  });

export const AssignRolesBody = z.strictObject({
  roles: z.array(z.string().min(1).max(40).refine(singleLine, PLAIN_TEXT)).min(1, 'At least one role').max(50),
});

export const ListUsersQuery = z.strictObject({
  limit: limitSchema,
  cursor: z.string().max(200).optional(),
  role: z.string().max(40).refine(singleLine, PLAIN_TEXT).optional(),
  q: z.string().max(100).refine(singleLine, PLAIN_TEXT).optional(),
});

export const UserListSchema = z.object({ items: z.array(UserSchema), nextCursor: z.string().nullable() });
