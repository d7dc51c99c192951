// After every API response: Prometheus request metrics, one audit entry (action
// from the matched route's metadata, detail for security events) and the RBAC
// statistics. Nothing here waits on I/O: the writers batch off the request path.
import { createMiddleware } from 'hono/factory';
import type { AuditWriter } from '../audit/audit-log.js';
import type { Metrics } from '../lib/metrics.js';
import type { StatsCounters } from '../stats/counters.js';
import type { Logger } from '../lib/logger.js';
import type { AuditDetail } from '../lib/audit-details.js';
import { Problem } from '../lib/problem.js';
import { userIdOf, type Caller } from '../access/caller.js';
import type { RouteIndex } from './route-meta.js';
import type { AccessLogVariables, AuthVariables, ClientIpVariables, RbacVariables, RequestIdVariables } from './app-env.js';

/** What it reads, set by the middleware before or after it (absent when the chain stopped early). */
type Reads = RequestIdVariables & Partial<ClientIpVariables & Pick<AuthVariables, 'caller'> & RbacVariables>;

// Any parameter whose name suggests a secret (pw, pwd, pass, passcode, jwt, session, auth, ...).
const SECRET_PARAM = /token|pass|pw|secret|key|code|signature|credential|jwt|session|auth|otp|state|nonce|verifier/i;

const callerId = (caller: Caller | undefined): string | null => (caller === undefined ? null : userIdOf(caller));
/** A service client acting for itself: the audit entry's actor (actorType client). */
const clientIdOf = (caller: Caller | undefined): string | null => (caller?.kind === 'client' ? caller.clientId : null);

/** The path with its query string, secrets replaced. */
export function loggablePath(path: string, url: string): string {
  const q0 = url.indexOf('?');
  if (q0 === -1) return path.slice(0, 2048);
  const q = [...new URLSearchParams(url.slice(q0 + 1))]
    .map(([k, v]) => `${encodeURIComponent(k)}=${SECRET_PARAM.test(k) ? '[redacted]' : encodeURIComponent(v)}`)
    .join('&');
  return (path + (q ? `?${q}` : '')).slice(0, 2048);
}

export const accessLog = (opts: {
  audit: AuditWriter;
  stats: StatsCounters;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  /** The surface's declared routes: the matched one names the entry's action. */
  routes: RouteIndex;
}) => {
  // One labelled child per route, method and status, looked up once: prom-client
  // hashes a label object on every inc() and observe() (profiled on the hot path).
  const series = new Map<string, { requests: { inc(): void }; latency: { observe(v: number): void } }>();
  const seriesOf = (route: string, method: string, status: number) => {
    const key = `${status} ${method} ${route}`;
    let s = series.get(key);
    if (s === undefined) {
      const labels = { route, method, status: String(status) };
      s = { requests: opts.metrics.requests.labels(labels), latency: opts.metrics.latency.labels(labels) };
      // Bounded: past this many series (odd methods), each request looks its children up again.
      if (series.size < 2_000) series.set(key, s);
    }
    return s;
  };
  return createMiddleware<{ Variables: AccessLogVariables & Reads }>(async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const m = opts.routes.of(c);
    let action = m?.meta.action ?? 'unknown';
    const route = m?.path ?? '-';
    if (route === '-' && status === 405) action = 'method_not_allowed';
    const seconds = (performance.now() - started) / 1000;
    const series = seriesOf(route, c.req.method, status);
    series.requests.inc();
    series.latency.observe(seconds);

    const decision = c.get('decision');
    if (decision) {
      if (!decision.allowed) opts.metrics.permissionDenials.inc({ permission: decision.permission });
      opts.stats.add(decision.allowed ? 'access.allowed' : 'access.denied');
      opts.stats.add(`perm.${decision.permission}.${decision.allowed ? 'allowed' : 'denied'}`);
    }
    const err = c.error;
    const problemCode = err instanceof Problem ? err.code : undefined;
    if (problemCode === 'rate_limited') opts.stats.add('requests.rateLimited');
    const detail: AuditDetail | null =
      (err instanceof Problem ? err.extra.audit : undefined) ??
      c.get('auditDetail') ??
      (decision && !decision.allowed ? `permission_denied: ${decision.permission}` : undefined) ??
      (problemCode === 'rate_limited' || problemCode === 'invalid_token' ? problemCode : undefined) ??
      null;
    const entry = {
      at: new Date(opts.now()),
      requestId: c.get('requestId'),
      actorId: c.get('auditActor') ?? (err instanceof Problem ? err.extra.actor : undefined) ?? callerId(c.get('caller')),
      actorClient: clientIdOf(c.get('caller')),
      ip: c.get('clientIp') ?? 'unknown',
      method: c.req.method,
      path: loggablePath(c.req.path, c.req.url),
      route,
      status,
      action,
      detail,
    };
    opts.audit.record(entry);
    if (opts.logger.isLevelEnabled('debug')) opts.logger.debug({ ...entry, ms: Math.round(seconds * 1000) }, 'request');
  });
};
