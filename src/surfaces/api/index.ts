// The JSON API surface: every path no other surface answers. JSON bodies
// only, a Bearer token resolved to the caller, the rate limit, the access log,
// then each route's declaration, validator and handler; errors are RFC 9457
// problem JSON.
import { Hono, type Context } from 'hono';
import type { AppServices } from '../../deps.js';
import { Problem } from '../../lib/problem.js';
import { accessLog } from '../../middleware/access-log.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { authenticate } from './authenticate.js';
import { jsonBody, limitBody } from '../../middleware/body.js';
import { methodIndex } from '../../middleware/method-not-allowed.js';
import { mfaPolicy } from './mfa-policy.js';
import { problemHandler, renderProblem } from '../../middleware/problem.js';
import { rateLimit } from './rate-limit.js';
import { RouteIndex } from '../../middleware/route-meta.js';
import { adminRoutes } from '../../modules/admin/admin.routes.js';
import { authRoutes } from '../../modules/auth/auth.routes.js';
import { clientsRoutes } from '../../modules/clients/clients.routes.js';
import { identityProvidersPublicRoutes, identityProvidersRoutes } from '../../modules/identity-providers/identity-providers.routes.js';
import { mfaAccountRoutes, mfaLoginRoutes } from '../../modules/mfa/mfa.routes.js';
import { passkeyAccountRoutes, passkeyLoginRoutes } from '../../modules/passkeys/passkeys.routes.js';
import { postsRoutes } from '../../modules/posts/posts.routes.js';
import { rolesRoutes } from '../../modules/roles/roles.routes.js';
import { sessionsRoutes } from '../../modules/sessions/sessions.routes.js';
import { setupRoutes } from '../../modules/setup/setup.routes.js';
import { grantsRoutes } from '../../modules/grants/grants.routes.js';
import { identitiesRoutes } from '../../modules/identities/identities.routes.js';
import { hasSecondFactorNow } from '../../modules/users/users.cache.js';
import { usersRoutes } from '../../modules/users/users.routes.js';

/**
 * Mounted last, with route('/', …): its middleware are the app's `/*`, reached
 * only by requests no surface before it answered. It has no onError of its own
 * on purpose: route() would wrap each of its handlers in one more async layer
 * (the hot path); as the surface of every other path, its renderers are the
 * app's (apiErrorHandler, apiNotFound).
 */
export function apiSurface(svc: AppServices) {
  const { config } = svc;
  // Filled from the finished route table below, before the first request.
  const routes = new RouteIndex();
  // Made first: it registers its export list and stats part, which the users
  // and admin routes read when they are built (svc.contributions).
  const posts = postsRoutes(svc);
  const identities = identitiesRoutes(svc);
  const surface = new Hono<AppEnv>()
    .use(accessLog({ audit: svc.audit, stats: svc.stats, metrics: svc.metrics, logger: svc.logger, now: svc.clock, routes }))
    .use(limitBody(config.bodyLimitBytes))
    .use(jsonBody())
    .use(
      authenticate({
        verify: svc.verifyToken,
        callers: {
          db: svc.database.db,
          store: svc.store,
          roleCache: svc.roleCache,
          session: svc.sessionOptions,
          now: svc.clock,
        },
        routes,
        rateWindowMs: config.rateLimit.windowSeconds * 1000,
        rateLimit: config.rateLimit.requests,
        onFlood: () => svc.metrics.rateLimited.inc({ limiter: 'invalid_tokens' }),
      }),
    )
    .use(rateLimit({ limit: config.rateLimit.requests, onReject: () => svc.metrics.rateLimited.inc({ limiter: 'requests' }) }))
    .use(mfaPolicy({ requiredRoles: config.mfa.requiredRoles, hasSecondFactor: (userId) => hasSecondFactorNow(svc, userId), routes }))
    .route('/auth', authRoutes(svc))
    .route('/auth', mfaLoginRoutes(svc))
    .route('/auth', passkeyLoginRoutes(svc))
    .route('/auth', identityProvidersPublicRoutes(svc))
    .route('/users', sessionsRoutes(svc))
    .route('/users', mfaAccountRoutes(svc))
    .route('/users', passkeyAccountRoutes(svc))
    .route('/users', usersRoutes(svc))
    .route('/users', grantsRoutes(svc))
    .route('/users', identities)
    .route('/', rolesRoutes(svc))
    .route('/posts', posts)
    .route('/admin', adminRoutes(svc))
    .route('/admin', clientsRoutes(svc))
    .route('/admin', identityProvidersRoutes(svc))
    .route('/setup', setupRoutes(svc));
  routes.index(surface.routes);
  return surface;
}

/** The API's problem renderer, installed as the app's onError. */
export const apiErrorHandler = problemHandler;

/**
 * The API's answer for a path no route answers, installed as the app's notFound:
 * 404, or 405 with Allow when the path is known (from the whole app's route table).
 */
// biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env and routes
export function apiNotFound(app: Hono<any, any, any>) {
  const allowed = methodIndex(app);
  return (c: Context) => {
    const requestId = (c.get('requestId' as never) as string | undefined) ?? 'unknown';
    const methods = allowed(c.req.path);
    if (methods.length > 0) {
      return renderProblem(
        c,
        new Problem('method_not_allowed', `Use ${methods.join(', ')}`, { headers: { Allow: methods.join(', ') } }),
        requestId,
      );
    }
    return renderProblem(c, new Problem('not_found', `No route for ${c.req.method} ${c.req.path}`), requestId);
  };
}
