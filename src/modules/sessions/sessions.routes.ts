// /users/me/sessions and /users/:id/sessions: seeing and ending sessions.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { IdParam } from '../../lib/schemas.js';
import { SessionIdParam, SessionListSchema } from './sessions.schemas.js';
import { SESSION_LIST_MAX, endAllSessions, endOtherSessions, endOwnSession, listSessions } from './sessions.service.js';

export const sessionsRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .get(
      '/me/sessions',
      declareRoute({
        action: 'users.me.sessions.list',
        personal: true,
        summary: 'Your live sessions, newest first',
        description: `One per sign-in; \`current\` marks the one this token belongs to. At most the ${SESSION_LIST_MAX} newest are listed.`,
        permission: 'profile:read',
        tags: ['sessions'],
        responses: { 200: SessionListSchema },
      }),
      async (c) => {
        const caller = c.get('caller');
        return c.json({ items: await listSessions(svc, caller.userId, caller.sessionId) }, 200);
      },
    )
    .delete(
      '/me/sessions/:id',
      declareRoute({
        action: 'users.me.sessions.end',
        personal: true,
        summary: 'End one of your sessions (in force on the next request)',
        permission: 'profile:update',
        tags: ['sessions'],
        // A DELETE may still carry a body: it is checked like any other.
        body: true,
        responses: { 204: null },
        errors: ['not_found'],
      }),
      validate('param', SessionIdParam),
      async (c) => {
        await endOwnSession(svc, c.get('caller').userId, c.req.valid('param').id);
        c.set('auditDetail', 'session_revoked');
        return c.body(null, 204);
      },
    )
    .delete(
      '/me/sessions',
      declareRoute({
        action: 'users.me.sessions.end_others',
        personal: true,
        summary: 'Sign out everywhere else: end every session but this one',
        permission: 'profile:update',
        tags: ['sessions'],
        body: true,
        responses: { 204: null },
      }),
      async (c) => {
        const caller = c.get('caller');
        const n = await endOtherSessions(svc, caller.userId, caller.sessionId);
        c.set('auditDetail', `other_sessions_revoked: ${n}`);
        return c.body(null, 204);
      },
    )
    .delete(
      '/:id/sessions',
      declareRoute({
        action: 'users.sessions.end_all',
        personal: true,
        summary: 'End every session of a user (in force on the next request)',
        description: 'Nobody ends the sessions of a user holding a permission they do not hold (403 forbidden).',
        permission: 'users:sessions:revoke',
        tags: ['sessions'],
        body: true,
        responses: { 204: null },
        errors: ['not_found'],
      }),
      validate('param', IdParam),
      async (c) => {
        const n = await endAllSessions(svc, c.get('caller'), c.req.valid('param').id);
        c.set('auditDetail', `all_sessions_revoked: ${n}`);
        return c.body(null, 204);
      },
    );
