// /admin: the audit log and usage statistics.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { LogListSchema, LogsQuery, StatsSchema } from './admin.schemas.js';
import { getStats, listLogs } from './admin.service.js';

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
        responses: { 200: StatsSchema },
      }),
      async (c) => c.json(await getStats(svc), 200),
    );
