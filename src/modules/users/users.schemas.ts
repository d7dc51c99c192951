// Request and response schemas of the users module (and the User shape that
// auth returns too).
import { z } from 'zod';
import { PLAIN_TEXT, singleLine } from '../../lib/schemas.js';

export const IdParam = z.strictObject({ id: z.uuid({ message: 'Must be a UUID' }) });

export const emailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .refine(singleLine, PLAIN_TEXT)
  .pipe(z.email({ message: 'Must be an email address' }));

/** 8–128 Unicode code points after NFKC normalization (NIST SP 800-63B). */
export const newPasswordSchema = z.string().refine(
  (pw) => {
    const n = [...pw.normalize('NFKC')].length;
    return n >= 8 && n <= 128;
  },
  { message: 'Must be 8 to 128 characters' },
);

export const nameSchema = z.string().trim().min(1, 'Must not be empty').max(100, 'At most 100 characters').refine(singleLine, PLAIN_TEXT);

export const UserSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string(),
  roles: z.array(z.string()),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type User = z.infer<typeof UserSchema>;

export const MeSchema = UserSchema.extend({ permissions: z.array(z.string()) });

export const UpdateMeBody = z.strictObject({
  name: nameSchema.optional(),
  email: emailSchema.optional(),
  password: newPasswordSchema.optional(),
  currentPassword: z.string().max(1024).optional(),
});

export const roleNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{1,39}$/, 'Role names match ^[a-z][a-z0-9_-]{1,39}$');

export const AssignRolesBody = z.strictObject({
  roles: z.array(z.string().min(1).max(40).refine(singleLine, PLAIN_TEXT)).min(1, 'At least one role').max(50),
});

export const limitSchema = z
  .string()
  .regex(/^\d{1,3}$/, 'Must be an integer from 1 to 100')
  .transform(Number)
  .pipe(z.number().int().min(1, 'Must be at least 1').max(100, 'Must be at most 100'))
  .default(20);

export const ListUsersQuery = z.strictObject({
  limit: limitSchema,
  cursor: z.string().max(200).optional(),
  role: z.string().max(40).refine(singleLine, PLAIN_TEXT).optional(),
  q: z.string().max(100).refine(singleLine, PLAIN_TEXT).optional(),
});

export const UserListSchema = z.object({ items: z.array(UserSchema), nextCursor: z.string().nullable() });
