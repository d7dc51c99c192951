// Operations endpoints: liveness, readiness and metrics. Mounted ahead of the
// API chain, so they are neither rate-limited nor written to the audit log.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import type { AppServices } from '../../deps.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { problemBody, Problem } from '../../lib/problem.js';
import { problemHandler, renderProblem } from '../../middleware/problem.js';
import { requestId } from '../../middleware/request-id.js';
import { docsHandlers } from './docs.js';
import { openApiDocument } from './openapi.js';

/** Constant-time comparison of two strings (their digests, so lengths do not leak either). */
const sameSecret = (a: string, b: string) =>
  timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

const op = (operationId: string, summary: string, responses: Record<string, object>) =>
  describeRoute({ operationId, summary, tags: ['ops'], security: [], 'x-permission': [], responses } as Parameters<
    typeof describeRoute
  >[0]);

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** GET /metrics, behind METRICS_TOKEN when that is set. */
const metricsRoutes = (svc: AppServices) => {
  const metricsToken = svc.config.metricsToken;
  return new Hono<{ Variables: { requestId: string } }>().get(
    '/metrics',
    op('ops.metrics', 'Prometheus metrics (with METRICS_TOKEN set: `Authorization: Bearer <METRICS_TOKEN>`)', {
      200: { description: 'Prometheus text format' },
      401: problemResponse('Problem `unauthenticated`: METRICS_TOKEN is set and the request does not carry it'),
    }),
    async (c) => {
      if (metricsToken && !sameSecret(requestHeader(c, 'authorization') ?? '', `Bearer ${metricsToken}`)) {
        const p = new Problem('unauthenticated', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
        return c.body(JSON.stringify(problemBody(p, c.get('requestId'))), 401, {
          'Content-Type': 'application/problem+json',
          'WWW-Authenticate': 'Bearer realm="metrics"',
        });
      }
      const pool = svc.database.poolStats();
      svc.metrics.poolMax.set(pool.max);
      svc.metrics.healthProbes.set(pool.probesInFlight);
      return c.body(await svc.metrics.registry.metrics(), 200, { 'Content-Type': svc.metrics.registry.contentType });
    },
  );
};

/**
 * With METRICS_PORT, the app of the separate metrics listener: GET /metrics
 * (still behind METRICS_TOKEN when that is set too) and nothing else.
 */
export function metricsApp(svc: AppServices) {
  const app = new Hono<{ Variables: { requestId: string } }>().use(requestId()).route('/', metricsRoutes(svc));
  app.notFound((c) => renderProblem(c, new Problem('not_found', `No route for ${c.req.method} ${c.req.path}`), c.get('requestId')));
  app.onError(problemHandler(svc.logger));
  return app;
}

/**
 * `app` is the whole application, for the OpenAPI document (read lazily, once it is built).
 * GET /metrics is here unless METRICS_PORT serves it on a listener of its own (metricsApp).
 */
// biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env and routes
export const opsRoutes = (svc: AppServices, app: () => Hono<any, any, any>) => {
  const document = openApiDocument(app, '0.1.0');
  const docs = docsHandlers();
  const routes = new Hono<{ Variables: { requestId: string } }>()
    .get('/healthz', op('ops.healthz', 'Liveness: 200 while the process runs', { 200: { description: 'Alive' } }), (c) =>
      c.json({ status: 'ok' as const }, 200),
    )
    .get(
      '/readyz',
      op('ops.readyz', 'Readiness: the database (and Redis, if configured) answer', {
        200: { description: 'Ready' },
        503: problemResponse('Problem `service_unavailable`, naming what is down; `checks` lists each dependency'),
      }),
      async (c) => {
        const checks: Record<string, 'up' | 'down'> = {};
        const probes: [string, () => Promise<void>][] = [['database', () => svc.database.ping()]];
        if (svc.store.kind === 'redis') probes.push(['redis', () => svc.store.ping()]);
        await Promise.all(
          probes.map(async ([name, probe]) => {
            try {
              await withTimeout(probe(), 2_000);
              checks[name] = 'up';
            } catch {
              checks[name] = 'down';
            }
          }),
        );
        const down = Object.keys(checks).filter((k) => checks[k] === 'down');
        if (down.length === 0) return c.json({ status: 'ready' as const, checks }, 200);
        const p = new Problem('service_unavailable', `Not ready: ${down.join(', ')} down`);
        return c.body(JSON.stringify({ ...problemBody(p, c.get('requestId')), checks }), 503, {
          'Content-Type': 'application/problem+json',
        });
      },
    )
    .get('/openapi.json', op('ops.openapi', 'This OpenAPI 3.1 document', { 200: { description: 'OpenAPI 3.1 JSON' } }), async (c) =>
      c.json((await document()) as Record<string, unknown>, 200),
    )
    .get('/docs', op('ops.docs', 'Interactive API reference (Swagger UI)', { 200: { description: 'HTML' } }), docs.page)
    // Listed in this document too: every route is (test/integration/openapi.test.ts).
    .get(
      '/docs/assets/:file',
      op('ops.docsAsset', 'A static file of the /docs page (Swagger UI, from swagger-ui-dist)', {
        200: { description: 'CSS, JavaScript or image' },
        404: problemResponse("Problem `not_found`: not one of the page's files"),
      }),
      docs.asset,
    );
  if (!svc.config.metricsListener) routes.route('/', metricsRoutes(svc));
  return routes;
};
