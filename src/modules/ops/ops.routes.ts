// Operations endpoints: liveness, readiness and metrics. Mounted ahead of the
// API chain, so they are neither rate-limited nor written to the audit log.
import { Hono } from 'hono';
import type { Runtime } from '../../deps.js';
import { problemBody, Problem } from '../../lib/problem.js';

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

export const opsRoutes = (rt: Runtime) =>
  new Hono<{ Variables: { requestId: string } }>()
    .get('/healthz', (c) => c.json({ status: 'ok' as const }, 200))
    .get('/readyz', async (c) => {
      const checks: Record<string, 'up' | 'down'> = {};
      const probes: [string, () => Promise<void>][] = [['database', () => rt.database.ping()]];
      if (rt.store.kind === 'redis') probes.push(['redis', () => rt.store.ping()]);
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
      c.header('Content-Type', 'application/problem+json');
      return c.body(JSON.stringify({ ...problemBody(p, c.var.requestId), checks }), 503);
    })
    .get('/metrics', async (c) => {
      const pool = rt.database.poolStats();
      rt.metrics.poolMax.set(pool.max);
      rt.metrics.poolInUse.set(pool.inUse);
      c.header('Content-Type', rt.metrics.registry.contentType);
      return c.body(await rt.metrics.registry.metrics(), 200);
    });
