// Prometheus metrics, one registry per app instance (tests build several apps).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'rate_limit_rejections_total',
    help: 'Requests refused with 429, by limiter',
    labelNames: ['limiter'] as const,
    registers: [registry],
  });
  const permissionDenials = new Counter({
    name: 'permission_denials_total',
    help: 'Requests refused for a missing permission',
    labelNames: ['permission'] as const,
    registers: [registry],
  });
  const storeDegraded = new Counter({
    name: 'store_degraded_operations_total',
    help: 'Store operations that fell back because Redis was unreachable',
    labelNames: ['operation'] as const,
    registers: [registry],
  });
  const nearCacheLive = new Gauge({
    name: 'store_near_cache_live',
    help: '1 while session, role and profile state is served from memory (the Redis invalidation channel is proven live), 0 while every request reads Redis',
    registers: [registry],
  });
  const nearCacheFlushes = new Counter({
    name: 'store_near_cache_bypass_total',
    help: 'Times the near-cache was flushed and bypassed because the invalidation channel was lost or unconfirmed',
    registers: [registry],
  });
  const auditDropped = new Counter({
    name: 'audit_entries_dropped_total',
    help: 'Audit entries dropped because the buffer was full or the database refused them',
    registers: [registry],
  });
  const auditWritten = new Counter({
    name: 'audit_entries_written_total',
    help: 'Audit entries written to the database',
    registers: [registry],
  });
  const txRetries = new Counter({
    name: 'db_transaction_retries_total',
    help: 'Transactions retried after a serialization failure',
    registers: [registry],
  });
  const mail = new Counter({
    name: 'mail_outbox_events_total',
    help: 'Outbox mail: sent, retried (not handed over yet) and abandoned (refused for good or expired)',
    labelNames: ['event'],
    registers: [registry],
  });
  const backchannel = new Counter({
    name: 'backchannel_logout_deliveries_total',
    help: 'Back-channel logout deliveries: delivered, retried (the client did not take it yet) and given_up',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const poolMax = new Gauge({ name: 'db_pool_max', help: 'Configured database pool size', registers: [registry] });
  // postgres.js does not expose how many pool connections are busy, so there is
  // no in-use gauge; a probe stuck on a hung database shows here.
  const healthProbes = new Gauge({
    name: 'db_health_probes_in_flight',
    help: 'Database health probes (GET /readyz) waiting for an answer',
    registers: [registry],
  });
  return {
    registry,
    requests,
    latency,
    rateLimited,
    permissionDenials,
    storeDegraded,
    nearCacheLive,
    nearCacheFlushes,
    auditDropped,
    auditWritten,
    txRetries,
    mail,
    backchannel,
    poolMax,
    healthProbes,
  };
}
