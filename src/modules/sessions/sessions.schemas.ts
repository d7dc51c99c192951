// Request and response schemas of the sessions module.
import { z } from 'zod';

export const SessionSchema = z.object({
  /** The `sid` claim of the session's access tokens. */
  id: z.uuid(),
  createdAt: z.iso.datetime(),
  lastRefreshedAt: z.iso.datetime().nullable(),
  expiresAt: z.iso.datetime(),
  ip: z.string(),
  userAgent: z.string(),
  current: z.boolean(),
});
export type SessionView = z.infer<typeof SessionSchema>;

export const SessionListSchema = z.object({ items: z.array(SessionSchema) });

export const SessionIdParam = z.strictObject({ id: z.uuid({ message: 'Must be a UUID' }) });
