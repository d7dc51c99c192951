// /admin: the audit log and usage statistics (totals, and per hour).
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { LogListSchema, LogsQuery, statsSchema, StatsTimelineSchema, TimelineQuery } from './admin.schemas.js';
import { getStats, getStatsTimeline, listLogs } from './admin.service.js';

export const adminRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .get(
      '/logs',
      declareRoute({
        action: 'admin.logs.read',
        personal: true,
        summary: 'Search the audit log, newest first',
        permission: 'admin:logs:read',
        tags: ['admin'],
        responses: { 200: LogListSchema },
      }),
      validate('query', LogsQuery),
      async (c) => c.json(await listLogs(svc, c.req.valid('query')), 200),
    )
    .get(
      '/stats',
      declareRoute({
        action: 'admin.stats.read',
        personal: true,
        summary: 'RBAC usage statistics',
        permission: 'admin:stats:read',
        tags: ['admin'],
        responses: { 200: statsSchema(svc.contributions.statsContributions) },
      }),
      async (c) => c.json(await getStats(svc), 200),
    )
    .get(
      '/stats/timeline',
      declareRoute({
        action: 'admin.stats.timeline',
        personal: true,
        summary: 'Sign-ins, permission checks and rate-limit refusals per hour',
        description:
          'One bucket per hour (`start` on the hour, UTC), oldest first, the current hour last; `hours` is 1 to 168 (default 24). Counted per hour as they happen, on every instance, and kept for 168 hours.',
        permission: 'admin:stats:read',
        tags: ['admin'],
        responses: { 200: StatsTimelineSchema },
      }),
      validate('query', TimelineQuery),
      async (c) => c.json(await getStatsTimeline(svc, c.req.valid('query').hours), 200),
    );
