// The ops surface: /healthz, /readyz, /metrics (unless METRICS_PORT serves it
// apart), /openapi.json and /docs. No credentials resolved (/metrics checks its
// own token), not rate-limited, not written to the audit log; errors are
// problem JSON, like the API's.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import { problemHandler } from '../../middleware/problem.js';
import { opsRoutes } from './routes.js';

/** `app` is the whole application, for the OpenAPI document (read lazily, once it is built). */
// biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env and routes
export function opsSurface(svc: AppServices, app: () => Hono<any, any, any>) {
  const surface = new Hono<{ Variables: { requestId: string } }>().route('/', opsRoutes(svc, app));
  surface.onError(problemHandler(svc.logger));
  return surface;
}
