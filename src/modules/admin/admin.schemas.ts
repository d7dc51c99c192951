// Request and response schemas of the admin module.
import { z } from 'zod';
import type { StatsContribution, StatsSections } from '../../lib/contributions.js';
import { isoTimeSchema, limitSchema, PLAIN_TEXT, singleLine } from '../../lib/schemas.js';

export const LogsQuery = z.strictObject({
  limit: limitSchema,
  cursor: z.string().max(200).optional(),
  actorId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{3,64}$/, 'actorId must be a user id (UUID) or a client id')
    .optional(),
  action: z.string().min(1).max(100).refine(singleLine, PLAIN_TEXT).optional(),
  status: z
    .string()
    .regex(/^[1-5]\d\d$/, 'Must be an HTTP status')
    .transform(Number)
    .optional(),
  since: isoTimeSchema.optional(),
  until: isoTimeSchema.optional(),
});

export const LogEntrySchema = z.object({
  id: z.uuid(),
  at: z.iso.datetime(),
  requestId: z.string(),
  /** The user's id, or the service client's id (actorType client); null for anonymous requests. */
  actorId: z.string().nullable(),
  actorType: z.enum(['user', 'client']).nullable(),
  ip: z.string(),
  method: z.string(),
  path: z.string(),
  route: z.string(),
  status: z.number().int(),
  action: z.string(),
  detail: z.string().nullable(),
});

export const LogListSchema = z.object({ items: z.array(LogEntrySchema), nextCursor: z.string().nullable() });

const allowDeny = z.object({ allowed: z.number().int(), denied: z.number().int() });

const statsHead = {
  since: z.iso.datetime(),
  users: z.object({ total: z.number().int(), byRole: z.record(z.string(), z.number().int()) }),
  roles: z.object({ total: z.number().int(), custom: z.number().int() }),
};

const statsTail = {
  sessions: z.object({ active: z.number().int() }),
  auth: z.object({
    loginSucceeded: z.number().int(),
    loginFailed: z.number().int(),
    refreshed: z.number().int(),
    refreshReused: z.number().int(),
  }),
  access: z.object({
    allowed: z.number().int(),
    denied: z.number().int(),
    byPermission: z.record(z.string(), allowDeny),
  }),
};

/** GET /admin/stats, with what other modules contribute between `roles` and `sessions`. */
export const statsSchema = (parts: readonly StatsContribution[]) =>
  z.object({ ...statsHead, ...Object.fromEntries(parts.map((p) => [p.name, p.schema])), ...statsTail });

const OwnStatsSchema = z.object({ ...statsHead, ...statsTail });
export type Stats = z.infer<typeof OwnStatsSchema> & StatsSections;

export const TimelineQuery = z.strictObject({
  hours: z
    .string()
    .regex(/^\d{1,3}$/, 'Must be an integer from 1 to 168')
    .transform(Number)
    .pipe(z.number().int().min(1, 'Must be at least 1').max(168, 'Must be at most 168'))
    .default(24),
});

export const TimelineBucketSchema = z.object({
  /** The hour's start, on the hour (UTC). */
  start: z.iso.datetime(),
  loginSucceeded: z.number().int(),
  loginFailed: z.number().int(),
  allowed: z.number().int(),
  denied: z.number().int(),
  rateLimited: z.number().int(),
});
export type TimelineBucket = z.infer<typeof TimelineBucketSchema>;

export const StatsTimelineSchema = z.object({ buckets: z.array(TimelineBucketSchema) });
export type StatsTimeline = z.infer<typeof StatsTimelineSchema>;
