// Migrations and start-up seeding: safe when instances start together; the
// standalone `npm run db:migrate` applies them too.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/app.js';
import { connectPostgres, tlsFromUrl } from '../../src/db/connect.js';
import { describeError } from '../../src/lib/logger.js';
import { createMetrics } from '../../src/lib/metrics.js';
import { migrate, MIGRATIONS_FOLDER } from '../../src/db/migrate.js';
import { logsPage } from '../../src/modules/admin/admin.service.js';
import { MemoryStore } from '../../src/store/memory.js';
import { ADMIN, testConfig } from '../helpers/app.js';
import { freshPostgres } from '../helpers/services.js';

async function count(url: string, query: string): Promise<number> {
  const t = tlsFromUrl({ url });
  const sql = postgres(t.url, { ssl: t.ssl, max: 1, onnotice: () => {} });
  try {
    const [row] = await sql.unsafe(query);
    return Number(row!.n);
  } finally {
    await sql.end();
  }
}

const MIGRATIONS = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER }).length;

describe('migrations and seeding', () => {
  it('lets four instances start together on an empty database: one schema, four roles, one admin', async () => {
    const db = await freshPostgres();
    const config = testConfig();
    const conns = await Promise.all([1, 2, 3, 4].map(() => connectPostgres({ url: db.url, poolSize: 2 })));
    try {
      const results = await Promise.allSettled(
        conns.map((database) => prepareDatabase({ database, config, store: new MemoryStore(), metrics: createMetrics() })),
      );
      // The SQLSTATE, constraint and table (never drizzle's 'Failed query'), so a failure says why.
      expect(results.filter((r) => r.status === 'rejected').map((r) => describeError((r as PromiseRejectedResult).reason))).toEqual([]);
      expect(await count(db.url, 'select count(*) as n from schema_migrations')).toBe(MIGRATIONS);
      expect(await count(db.url, 'select count(*) as n from roles where built_in')).toBe(4);
      expect(await count(db.url, `select count(*) as n from users where email = '${ADMIN.email}'`)).toBe(1);
      expect(await count(db.url, "select count(*) as n from user_roles where role_name = 'admin'")).toBe(1);
      // And again: idempotent.
      await prepareDatabase({ database: conns[0]!, config, store: new MemoryStore(), metrics: createMetrics() });
      expect(await count(db.url, 'select count(*) as n from role_permissions')).toBeGreaterThan(10);
    } finally {
      await Promise.all(conns.map((c) => c.close()));
      await db.dispose();
    }
  });

  it('applies migrations with npm run db:migrate', async () => {
    const db = await freshPostgres();
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/db/migrate.cli.ts'], {
        env: { PATH: process.env.PATH, DATABASE_URL: db.url },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain(`migrations applied: ${MIGRATIONS} (postgres)`);
      expect(await count(db.url, "select count(*) as n from information_schema.tables where table_name = 'audit_logs'")).toBe(1);
      const again = spawnSync(process.execPath, ['--import', 'tsx', 'src/db/migrate.cli.ts'], {
        env: { PATH: process.env.PATH, DATABASE_URL: db.url },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(again.stdout).toMatch(/migrations applied: 0/);
    } finally {
      await db.dispose();
    }
  });

  it('upgrades a database made by the first migration without losing audit rows, and pages them newest first', async () => {
    // A copy of the migrations folder holding only 0000, as an older release shipped it.
    const first = mkdtempSync(join(tmpdir(), 'auth-migrations-'));
    const db = await freshPostgres();
    const database = await connectPostgres({ url: db.url, poolSize: 2 });
    try {
      cpSync(MIGRATIONS_FOLDER, first, { recursive: true });
      const journal = JSON.parse(readFileSync(join(first, 'meta/_journal.json'), 'utf8')) as { entries: { idx: number }[] };
      journal.entries = journal.entries.filter((e) => e.idx === 0);
      writeFileSync(join(first, 'meta/_journal.json'), JSON.stringify(journal));
      expect(await migrate(database.db, first)).toEqual({ applied: 1 });
      const t = tlsFromUrl({ url: db.url });
      const sql = postgres(t.url, { ssl: t.ssl, max: 1, onnotice: () => {} });
      await sql`insert into audit_logs (at, request_id, ip, method, path, route, status, action)
        select now() - (g || ' minutes')::interval, 'old-' || g, '1.2.3.4', 'GET', '/posts', '/posts', 200, 'posts.list' from generate_series(1, 300) g`;
      await sql.end();

      expect(await migrate(database.db)).toEqual({ applied: MIGRATIONS - 1 });
      expect(await count(db.url, 'select count(*) as n from audit_logs')).toBe(300);
      const page = await logsPage(database.db, { limit: 3 });
      expect(page.map((r) => r.requestId)).toEqual(['old-1', 'old-2', 'old-3', 'old-4']);
    } finally {
      await database.close();
      await db.dispose();
      rmSync(first, { recursive: true, force: true });
    }
  });
});
