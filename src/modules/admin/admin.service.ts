// The audit log's read side, its retention, and the usage statistics (totals and per hour).
import { and, count, eq, gt, gte, isNull, lt, lte, min, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/connect.js';
import type { AppServices } from '../../deps.js';
import { newestFirstBackward, olderThan } from '../../db/keyset.js';
import { auditLogs, roles, sessions, statsCounters, statsHourly, userRoles, users } from '../../db/schema.js';
import { HOUR_MS, HOURLY_COUNTERS, hourOf } from '../../stats/counters.js';
import { cursorOf, pageOf } from '../../lib/keyset-page.js';
import { isUuid } from '../../lib/cursor.js';
import { ALL_PERMISSIONS } from '../../security/permissions.js';
import type { StatsSections } from '../../lib/contributions.js';
import type { Stats, StatsTimeline, TimelineBucket } from './admin.schemas.js';

export type LogQuery = {
  limit: number;
  cursor?: string | undefined;
  actorId?: string | undefined;
  action?: string | undefined;
  status?: number | undefined;
  since?: string | undefined;
  until?: string | undefined;
};

/** The query for one page of the log (limit + 1 rows, to know whether there is a next page). */
export function logsPage(db: Db, q: LogQuery) {
  const where: SQL[] = [];
  if (q.cursor !== undefined) {
    const c = cursorOf(q.cursor);
    where.push(olderThan(auditLogs.at, auditLogs.id, c));
  }
  if (q.actorId) where.push(isUuid(q.actorId) ? eq(auditLogs.actorId, q.actorId) : eq(auditLogs.actorClient, q.actorId));
  if (q.action) where.push(eq(auditLogs.action, q.action));
  if (q.status !== undefined) where.push(eq(auditLogs.status, q.status));
  if (q.since) where.push(gte(auditLogs.at, new Date(q.since)));
  if (q.until) where.push(lte(auditLogs.at, new Date(q.until)));
  return db
    .select()
    .from(auditLogs)
    .where(where.length ? and(...where) : undefined)
    .orderBy(...newestFirstBackward(auditLogs.at, auditLogs.id))
    .limit(q.limit + 1);
}

export async function listLogs(svc: AppServices, q: LogQuery) {
  const rows = await logsPage(svc.database.db, q);
  return pageOf(
    rows,
    q.limit,
    (r) => ({ at: r.at, id: r.id }),
    ({ actorClient, ...r }) => ({
      ...r,
      at: r.at.toISOString(),
      actorId: r.actorId ?? actorClient,
      actorType: r.actorId !== null ? ('user' as const) : actorClient !== null ? ('client' as const) : null,
    }),
  );
}

/**
 * One pruning step: the oldest `batch` rows before `cutoff`, found and deleted
 * along the primary key (at, id) (`id` alone has no index).
 */
export function pruneBatch(db: Db, cutoff: Date, batch: number) {
  const old = db
    .select({ at: auditLogs.at, id: auditLogs.id })
    .from(auditLogs)
    .where(lt(auditLogs.at, cutoff))
    .orderBy(auditLogs.at, auditLogs.id)
    .limit(batch);
  return db.delete(auditLogs).where(sql`(${auditLogs.at}, ${auditLogs.id}) IN (${old})`).returning({ id: auditLogs.id });
}

/** Delete audit rows older than the retention, a small batch at a time. */
export async function pruneAuditLog(svc: AppServices, batch = 1_000): Promise<number> {
  const cutoff = new Date(svc.clock() - svc.config.audit.retentionDays * 86_400_000);
  let total = 0;
  for (;;) {
    const gone = await pruneBatch(svc.database.db, cutoff, batch);
    total += gone.length;
    if (gone.length < batch) return total;
  }
}

export async function getStats(svc: AppServices): Promise<Stats> {
  await svc.stats.flush();
  const db = svc.database.db;
  const now = new Date(svc.clock());
  const parts = svc.contributions.statsContributions;
  const [[userTotal], byRoleRows, roleRows, contributed, [active], counterRows, [since]] = await Promise.all([
    db.select({ n: count() }).from(users),
    db.select({ role: userRoles.roleName, n: count() }).from(userRoles).groupBy(userRoles.roleName),
    db.select({ name: roles.name, builtIn: roles.builtIn }).from(roles),
    Promise.all(parts.map((p) => p.read())),
    db
      .select({ n: count() })
      .from(sessions)
      .where(and(isNull(sessions.revokedAt), gt(sessions.expiresAt, now))),
    db.select({ name: statsCounters.name, value: statsCounters.value }).from(statsCounters),
    db.select({ at: min(statsCounters.createdAt) }).from(statsCounters),
  ]);
  const counter = (name: string) => Number(counterRows.find((r) => r.name === name)?.value ?? 0);
  const byRole: Record<string, number> = {};
  for (const r of roleRows) byRole[r.name] = 0;
  for (const r of byRoleRows) byRole[r.role] = Number(r.n);
  const byPermission: Stats['access']['byPermission'] = {};
  for (const p of ALL_PERMISSIONS) byPermission[p] = { allowed: counter(`perm.${p}.allowed`), denied: counter(`perm.${p}.denied`) };
  return {
    since: (since?.at ?? now).toISOString(),
    users: { total: Number(userTotal?.n ?? 0), byRole },
    roles: { total: roleRows.length, custom: roleRows.filter((r) => !r.builtIn).length },
    // Keyed and typed as registered (StatsSections), in registration order.
    ...(Object.fromEntries(parts.map((p, i) => [p.name, contributed[i]])) as unknown as StatsSections),
    sessions: { active: Number(active?.n ?? 0) },
    auth: {
      loginSucceeded: counter('auth.loginSucceeded'),
      loginFailed: counter('auth.loginFailed'),
      refreshed: counter('auth.refreshed'),
      refreshReused: counter('auth.refreshReused'),
    },
    access: { allowed: counter('access.allowed'), denied: counter('access.denied'), byPermission },
  };
}

/** The last `hours` hourly buckets, oldest first, the current hour last; hours without a row are zeros. */
export async function getStatsTimeline(svc: AppServices, hours: number): Promise<StatsTimeline> {
  await svc.stats.flush();
  const last = hourOf(svc.clock());
  const first = last - (hours - 1) * HOUR_MS;
  const rows = await svc.database.db
    .select()
    .from(statsHourly)
    .where(and(gte(statsHourly.hour, new Date(first)), lte(statsHourly.hour, new Date(last))));
  const buckets: TimelineBucket[] = Array.from({ length: hours }, (_, i) => ({
    start: new Date(first + i * HOUR_MS).toISOString(),
    loginSucceeded: 0,
    loginFailed: 0,
    allowed: 0,
    denied: 0,
    rateLimited: 0,
  }));
  for (const r of rows) {
    const field = HOURLY_COUNTERS[r.name as keyof typeof HOURLY_COUNTERS];
    const bucket = buckets[(r.hour.getTime() - first) / HOUR_MS];
    if (field && bucket) bucket[field] += Number(r.value);
  }
  return { buckets };
}
