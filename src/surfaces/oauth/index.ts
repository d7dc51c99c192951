// The OAuth surface: /.well-known/* and /oauth2/*, the OpenID provider's home
// (its endpoints are still to come). It follows the OAuth RFCs, not the JSON
// API's conventions: form bodies with unknown parameters ignored, client
// credentials from `Authorization: Basic` or the form, and errors as
// `{ error, error_description }`, never cached. No Bearer token is judged here.
import { Hono, type Context } from 'hono';
import type { AppServices } from '../../deps.js';
import { accessLog } from '../../middleware/access-log.js';
import { limitBody } from '../../middleware/body.js';
import { methodIndex } from '../../middleware/method-not-allowed.js';
import { RouteIndex } from '../../middleware/route-meta.js';
import { clientCredentials } from './client-credentials.js';
import type { OAuthEnv } from './env.js';
import { externalRoutes } from './external.routes.js';
import { oauthError, oauthErrorHandler } from './errors.js';
import { formBody } from './form-body.js';
import { wellKnownRoutes } from './well-known.js';

export type { OAuthEnv } from './env.js';
export { OAuthError, oauthError } from './errors.js';

/**
 * The surface, mounted with route('/', …). Its middleware are registered on its
 * own paths only (a sub-app's `use('*')` would become the whole app's `/*`),
 * and its catch-alls answer every other request under them, so nothing of the
 * API's chain ever runs for these paths.
 *
 * `endpoints` are the provider's, mounted at /oauth2 (none yet; a test passes
 * its own to drive the chain).
 */
export function oauthSurface(svc: AppServices, endpoints: Hono<OAuthEnv> = new Hono<OAuthEnv>()) {
  const routes = new RouteIndex();
  const log = accessLog({ audit: svc.audit, stats: svc.stats, metrics: svc.metrics, logger: svc.logger, now: svc.clock, routes });
  const surface = new Hono<OAuthEnv>()
    .use('/.well-known/*', log)
    .use('/oauth2/*', log, limitBody(svc.config.bodyLimitBytes), formBody(), clientCredentials())
    .use('/auth/external/*', log)
    .route('/.well-known', wellKnownRoutes(svc))
    .route('/oauth2', endpoints)
    // Sign-in with upstream identity providers: browser endpoints, answered with redirects and pages.
    .route('/auth/external', externalRoutes(svc));
  const allowed = methodIndex(surface);
  const unknown = (c: Context) => {
    const methods = allowed(c.req.path);
    if (methods.length > 0) oauthError('method_not_allowed', `Use ${methods.join(', ')}`, 405, { Allow: methods.join(', ') });
    return oauthError('not_found', `No endpoint for ${c.req.method} ${c.req.path}`, 404);
  };
  surface.all('/.well-known/*', unknown).all('/oauth2/*', unknown);
  routes.index(surface.routes);
  surface.onError(oauthErrorHandler(svc.logger));
  return surface;
}
