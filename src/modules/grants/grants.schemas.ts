// Request and response schemas of the connected apps (a user's OAuth grants).
import { z } from 'zod';

export const GrantSchema = z.object({
  /** The app's `client_id`. */
  clientId: z.string(),
  clientName: z.string(),
  /** What the user allowed it, as OAuth scopes. */
  scopes: z.array(z.string()),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type GrantView = z.infer<typeof GrantSchema>;

export const GrantListSchema = z.object({ items: z.array(GrantSchema) });

export const ClientIdParam = z.strictObject({
  clientId: z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, 'Client ids match ^[A-Za-z0-9._-]{3,64}$'),
});
