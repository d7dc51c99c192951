// The audit writer's batched insert keeps every value exactly, however odd;
// what the database refuses costs only the rows it refuses.
import { like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditWriter, type AuditEntry } from '../../src/audit/audit-log.js';
import { createMetrics } from '../../src/lib/metrics.js';
import { connectPglite, connectPostgres, type Database } from '../../src/db/connect.js';
import { migrate } from '../../src/db/migrate.js';
import { auditLogs } from '../../src/db/schema.js';
import { createLogger } from '../../src/lib/logger.js';
import { LogCapture } from '../helpers/app.js';
import { sleep } from '../helpers/eventually.js';
import { freePort, TcpProxy } from '../helpers/processes.js';
import { freshPostgres, PG_URL } from '../helpers/services.js';

const entry = (requestId: string, over: Partial<AuditEntry> = {}): AuditEntry => ({
  at: new Date(),
  requestId,
  actorId: null,
  ip: '127.0.0.1',
  method: 'GET',
  path: '/x',
  route: '/x',
  status: 200,
  action: 'x',
  detail: null,
  ...over,
});
const written = (db: Database, tag: string) =>
  db.db
    .select()
    .from(auditLogs)
    .where(like(auditLogs.requestId, `${tag}%`));
const metric = async (m: ReturnType<typeof createMetrics>, name: string) =>
  Number(/ (\d+)$/m.exec(await m.registry.getSingleMetricAsString(name))?.[1] ?? 0);

describe('audit writer', () => {
  let database: Database;
  beforeAll(async () => {
    database = await connectPglite(null);
    await migrate(database.db);
  });
  afterAll(() => database.close());

  it('stores quotes, backslashes, braces, commas, NULL-looking text and unicode verbatim', async () => {
    const metrics = createMetrics();
    const writer = new AuditWriter(database.db, createLogger('silent'), metrics, { flushMs: 10 });
    const odd = ['plain', 'with "quotes"', 'back\\slash', '{braces},commas', 'NULL', '', 'ünïcødé 🔑', "it's"];
    const at = new Date('2026-01-02T03:04:05.678Z');
    odd.forEach((s, i) => {
      writer.record({
        at,
        requestId: `odd-${i}`,
        actorId: i % 2 ? null : '00000000-0000-4000-8000-000000000001',
        ip: s,
        method: 'GET',
        path: s,
        route: s,
        status: 200 + i,
        action: s,
        detail: i % 3 ? s : null,
      });
    });
    await writer.stop();
    const rows = (await database.db.select().from(auditLogs)).sort((a, b) => a.status - b.status);
    expect(rows.map((r) => r.path)).toEqual(odd);
    expect(rows.map((r) => r.detail)).toEqual(odd.map((s, i) => (i % 3 ? s : null)));
    expect(rows.map((r) => r.actorId)).toEqual(odd.map((_, i) => (i % 2 ? null : '00000000-0000-4000-8000-000000000001')));
    expect(rows.every((r) => r.at.getTime() === at.getTime())).toBe(true);
    expect(await metrics.registry.getSingleMetricAsString('audit_entries_written_total')).toMatch(/ 8$/m);
  });

  it('writes full batches as they fill and leaves a partial batch for the timer, not for a stream of small inserts', async () => {
    const metrics = createMetrics();
    const writer = new AuditWriter(database.db, createLogger('silent'), metrics, { batchSize: 10, flushMs: 1_500 });
    const before = (await database.db.select().from(auditLogs)).length;
    for (let i = 0; i < 25; i++) {
      writer.record(entry(`batch-${i}`));
    }
    const count = async () => (await database.db.select().from(auditLogs)).length - before;
    // Two full batches go out at once; the last 5 wait for the timer (or stop()).
    await expect.poll(count, { timeout: 1_000, interval: 20 }).toBe(20);
    await sleep(200);
    expect(await count()).toBe(20);
    expect(writer.pending).toBe(5);
    await writer.stop();
    expect(await count()).toBe(25);
  });

  it('writes everything recorded when a test drives it: runOnce() the partial batch now, idle() once nothing is left or in flight', async () => {
    const metrics = createMetrics();
    // A timer that never fires within the test: only the calls below write.
    const writer = new AuditWriter(database.db, createLogger('silent'), metrics, { batchSize: 10, flushMs: 60_000 });
    const before = (await database.db.select().from(auditLogs)).length;
    const count = async () => (await database.db.select().from(auditLogs)).length - before;
    for (let i = 0; i < 3; i++) writer.record(entry(`drive-${i}`));
    await writer.runOnce();
    expect(await count()).toBe(3);
    expect(writer.pending).toBe(0);
    // 25 more: two full batches start at once; idle() waits for them and writes the partial one.
    for (let i = 3; i < 28; i++) writer.record(entry(`drive-${i}`));
    await writer.idle();
    expect(writer.pending).toBe(0);
    expect(await count()).toBe(28);
    expect((await written(database, 'drive-')).map((r) => r.requestId).sort()).toEqual(
      Array.from({ length: 28 }, (_, i) => `drive-${i}`).sort(),
    );
    await writer.idle(); // nothing left: resolves at once
    await writer.stop();
  });

  it('stores NUL, other control characters and lone surrogates as visible escapes instead of losing the batch', async () => {
    const metrics = createMetrics();
    const writer = new AuditWriter(database.db, createLogger('silent'), metrics, { flushMs: 10 });
    const hostile = ['/\u0000', '/a\u0000b\u001b[31m\u007f', '/\ud800', '/x\udfffy', '/tab\there'];
    for (const [i, path] of hostile.entries()) writer.record(entry(`ctl-${i}`, { path, detail: path, action: path, ip: path }));
    writer.record(entry('ctl-after'));
    await writer.stop();
    const rows = (await written(database, 'ctl-')).sort((a, b) => a.requestId.localeCompare(b.requestId));
    expect(rows.map((r) => r.path)).toEqual(['/\\u0000', '/a\\u0000b\\u001b[31m\\u007f', '/\ufffd', '/x\ufffdy', '/tab\\u0009here', '/x']);
    expect(rows.map((r) => r.detail).slice(0, 5)).toEqual(rows.map((r) => r.path).slice(0, 5));
    expect(await metric(metrics, 'audit_entries_dropped_total')).toBe(0);
  });

  it('drops only the rows the database refuses, writes the rest of their batch, and logs the SQLSTATE once without values', async () => {
    const metrics = createMetrics();
    const logs = new LogCapture();
    const writer = new AuditWriter(database.db, createLogger('info', logs), metrics, { flushMs: 10, batchSize: 50 });
    for (let i = 0; i < 40; i++) {
      // Two rows no database will take: an actor id that is not a UUID, a status past int4.
      const over = i === 7 ? { actorId: 'not-a-uuid-secret-7' } : i === 31 ? { status: 2 ** 40, path: '/secret-path-31' } : {};
      writer.record(entry(`split-${String(i).padStart(2, '0')}`, over));
    }
    await writer.stop();
    const rows = await written(database, 'split-');
    expect(rows).toHaveLength(38);
    expect(rows.map((r) => r.requestId)).not.toContain('split-07');
    expect(rows.map((r) => r.requestId)).not.toContain('split-31');
    expect(await metric(metrics, 'audit_entries_dropped_total')).toBe(2);
    expect(await metric(metrics, 'audit_entries_written_total')).toBe(38);
    const warnings = logs.lines.filter((l) => l.includes('refused by the database'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ dropped: 2, sqlstate: { '22P02': 1, '22003': 1 } });
    expect(logs.text).not.toContain('secret');
    expect(logs.text).not.toContain('split-');
    expect(logs.text).not.toContain('params');
    // The writer goes on: later entries are written.
    const next = new AuditWriter(database.db, createLogger('silent'), metrics, { flushMs: 10 });
    next.record(entry('split-later'));
    await next.stop();
    expect(await written(database, 'split-later')).toHaveLength(1);
  });
});

describe('audit writer while PostgreSQL is unreachable', () => {
  it('keeps the whole batch on a transient failure and writes it once the database answers again', async () => {
    const fresh = await freshPostgres(PG_URL);
    const proxy = new TcpProxy(await freePort(), Number(new URL(PG_URL).port || 5432));
    await proxy.open();
    const via = new URL(fresh.url);
    via.port = String(proxy.port);
    via.hostname = '127.0.0.1';
    const database = await connectPostgres({ url: via.toString(), poolSize: 2 });
    const logs = new LogCapture();
    try {
      await migrate(database.db);
      const metrics = createMetrics();
      const writer = new AuditWriter(database.db, createLogger('info', logs), metrics, { flushMs: 10 });
      await proxy.cut();
      for (let i = 0; i < 30; i++) writer.record(entry(`down-${i}`, { path: `/down-secret-${i}` }));
      await writer.flush();
      expect(writer.pending).toBe(30);
      expect(await metric(metrics, 'audit_entries_dropped_total')).toBe(0);
      await proxy.open();
      await writer.stop(10_000);
      expect(await written(database, 'down-')).toHaveLength(30);
      expect(logs.text).toContain('audit write failed; will retry');
      expect(logs.text).not.toContain('down-secret');
    } finally {
      await database.close();
      await proxy.cut();
      await fresh.dispose();
    }
  });
});
