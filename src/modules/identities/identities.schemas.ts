// Request and response schemas of a user's external identities (sign-in
// through an upstream identity provider: /users/me/identities).
import { z } from 'zod';
import { mfaCodeSchema } from '../../lib/schemas.js';

export const IdentitySchema = z.object({
  id: z.uuid(),
  /** The provider's id (the slug of /auth/external/:provider). */
  provider: z.string(),
  /** The provider's display name (the sign-in button's label), for the account page. */
  providerName: z.string(),
  /** The address the provider last gave for this identity (for display; an identity is keyed by its subject). */
  email: z.string().nullable(),
  linkedAt: z.iso.datetime(),
  /** The last sign-in through this identity; null: not since it was linked. */
  lastUsedAt: z.iso.datetime().nullable(),
});
export type IdentityView = z.infer<typeof IdentitySchema>;

export const IdentityListSchema = z.object({ items: z.array(IdentitySchema) });

/** The step-up of an unlink: currentPassword for a user who has one (with `code` when TOTP is on), else a recent sign-in. */
export const UnlinkIdentityBody = z.strictObject({
  currentPassword: z.string().min(1).max(1024).optional(),
  code: mfaCodeSchema.optional(),
});

/** One identity in the account export: never a token of the provider's. */
export const ExportedIdentitySchema = z.object({
  provider: z.string(),
  email: z.string().nullable(),
  linkedAt: z.iso.datetime(),
  lastUsedAt: z.iso.datetime().nullable(),
});
export type ExportedIdentity = z.infer<typeof ExportedIdentitySchema>;
