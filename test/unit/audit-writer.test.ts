// The audit writer's batched insert keeps every value exactly, however odd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditWriter } from '../../src/audit/audit-log.js';
import { createMetrics } from '../../src/audit/metrics.js';
import { connectPglite, type Database } from '../../src/db/connect.js';
import { migrate } from '../../src/db/migrate.js';
import { auditLogs } from '../../src/db/schema.js';
import { createLogger } from '../../src/lib/logger.js';

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
    odd.forEach((s, i) =>
      writer.record({ at, requestId: `odd-${i}`, actorId: i % 2 ? null : '00000000-0000-4000-8000-000000000001', ip: s, method: 'GET', path: s, route: s, status: 200 + i, action: s, detail: i % 3 ? s : null }),
    );
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
      writer.record({ at: new Date(), requestId: `batch-${i}`, actorId: null, ip: '127.0.0.1', method: 'GET', path: '/x', route: '/x', status: 200, action: 'x', detail: null });
    }
    const count = async () => (await database.db.select().from(auditLogs)).length - before;
    // Two full batches go out at once; the last 5 wait for the timer (or stop()).
    await expect.poll(count, { timeout: 1_000, interval: 20 }).toBe(20);
    await new Promise((r) => setTimeout(r, 200));
    expect(await count()).toBe(20);
    expect(writer.pending).toBe(5);
    await writer.stop();
    expect(await count()).toBe(25);
  });
});
