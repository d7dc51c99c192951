// Migrations and start-up seeding: safe when instances start together, in one
// transaction per migration (PostgreSQL) or one statement at a time
// (CockroachDB, simulated here by mode: 'per-statement'); the standalone
// `npm run db:migrate` applies them too.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/app.js';
import { connectPostgres, tlsFromUrl } from '../../src/db/connect.js';
import { createLogger, describeError } from '../../src/lib/logger.js';
import { createMetrics } from '../../src/lib/metrics.js';
import { migrate, MIGRATIONS_FOLDER } from '../../src/db/migrate.js';
import { logsPage } from '../../src/modules/admin/admin.service.js';
import { MemoryStore } from '../../src/store/memory.js';
import { ADMIN, LogCapture, testConfig } from '../helpers/app.js';
import { freshPostgres } from '../helpers/services.js';

/** A single-connection client of its own (beside the pools under test), TLS as the URL says. */
function direct(url: string) {
  const t = tlsFromUrl({ url });
  return postgres(t.url, { ssl: t.ssl, max: 1, onnotice: () => {} });
}

async function count(url: string, query: string): Promise<number> {
  const sql = direct(url);
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
    const logs = new LogCapture();
    const logger = createLogger('debug', logs);
    try {
      const results = await Promise.allSettled(
        conns.map((database) => prepareDatabase({ database, config, store: new MemoryStore(), metrics: createMetrics(), logger })),
      );
      // The SQLSTATE, constraint and table (never drizzle's 'Failed query'), so a failure says why.
      expect(results.filter((r) => r.status === 'rejected').map((r) => describeError((r as PromiseRejectedResult).reason))).toEqual([]);
      expect(await count(db.url, 'select count(*) as n from schema_migrations')).toBe(MIGRATIONS);
      expect(await count(db.url, 'select count(*) as n from roles where built_in')).toBe(4);
      expect(await count(db.url, `select count(*) as n from users where email = '${ADMIN.email}'`)).toBe(1);
      expect(await count(db.url, "select count(*) as n from user_roles where role_name = 'admin'")).toBe(1);
      // And again: idempotent.
      await prepareDatabase({ database: conns[0]!, config, store: new MemoryStore(), metrics: createMetrics(), logger });
      expect(await count(db.url, 'select count(*) as n from role_permissions')).toBeGreaterThan(10);
      // The admin one of them created is not "an existing account" to the others, nor to a restart.
      expect(logs.text).not.toContain('BOOTSTRAP_ADMIN_EMAIL');
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
      const sql = direct(db.url);
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

  /** A migrations folder as drizzle-kit writes one, with these migrations (statements joined by breakpoints). */
  function folderWith(migrations: { tag: string; statements: string[] }[]): string {
    const dir = mkdtempSync(join(tmpdir(), 'auth-migrations-'));
    mkdirSync(join(dir, 'meta'));
    const entries = migrations.map((m, idx) => ({ idx, version: '7', when: 1_800_000_000_000 + idx, tag: m.tag, breakpoints: true }));
    writeFileSync(join(dir, 'meta/_journal.json'), JSON.stringify({ version: '7', dialect: 'postgresql', entries }));
    for (const m of migrations) writeFileSync(join(dir, `${m.tag}.sql`), m.statements.join('\n--> statement-breakpoint\n'));
    return dir;
  }

  const FAILS_THIRD = [
    'CREATE TABLE "mig_a" ("id" integer PRIMARY KEY, "v" integer)',
    'CREATE INDEX "mig_a_v_idx" ON "mig_a" ("v")',
    // Fails until mig_b exists (42P01), after two statements that succeed.
    'ALTER TABLE "mig_a" ADD CONSTRAINT "mig_a_v_fk" FOREIGN KEY ("v") REFERENCES "mig_b" ("id")',
    'CREATE INDEX "mig_a_id_v_idx" ON "mig_a" ("id", "v")',
  ];

  for (const mode of ['transaction', 'per-statement'] as const) {
    it(`leaves a migration whose third statement fails out of the journal, and completes it on a re-run (${mode})`, async () => {
      const db = await freshPostgres();
      const database = await connectPostgres({ url: db.url, poolSize: 2 });
      const folder = folderWith([{ tag: '0000_fails_third', statements: FAILS_THIRD }]);
      try {
        const failed = await migrate(database.db, { folder, mode }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(describeError(failed)).toMatchObject({ kind: 'database', code: '42P01' });
        expect(await count(db.url, 'select count(*) as n from schema_migrations')).toBe(0);
        // In one transaction nothing stayed; one statement at a time, the first two did.
        expect(await count(db.url, "select count(*) as n from information_schema.tables where table_name = 'mig_a'")).toBe(
          mode === 'transaction' ? 0 : 1,
        );
        expect(await count(db.url, 'select count(*) as n from schema_migration_lease')).toBe(0);

        const fix = direct(db.url);
        await fix`CREATE TABLE mig_b (id integer PRIMARY KEY)`;
        await fix.end();
        expect(await migrate(database.db, { folder, mode })).toEqual({ applied: 1 });
        expect(await count(db.url, 'select count(*) as n from schema_migrations')).toBe(1);
        expect(
          await count(db.url, "select count(*) as n from information_schema.table_constraints where constraint_name = 'mig_a_v_fk'"),
        ).toBe(1);
        expect(await count(db.url, "select count(*) as n from pg_indexes where indexname in ('mig_a_v_idx', 'mig_a_id_v_idx')")).toBe(2);
        expect(await migrate(database.db, { folder, mode })).toEqual({ applied: 0 });
      } finally {
        await database.close();
        await db.dispose();
        rmSync(folder, { recursive: true, force: true });
      }
    });
  }

  it('applies each migration once when four instances start together one statement at a time, ending with the same schema as one transaction each', async () => {
    const [perStatement, oneTx] = [await freshPostgres(), await freshPostgres()];
    const conns = await Promise.all([1, 2, 3, 4].map(() => connectPostgres({ url: perStatement.url, poolSize: 2 })));
    const single = await connectPostgres({ url: oneTx.url, poolSize: 2 });
    try {
      const results = await Promise.all(conns.map((c) => migrate(c.db, { mode: 'per-statement', leaseMs: 2_000 })));
      expect(results.reduce((n, r) => n + r.applied, 0)).toBe(MIGRATIONS);
      expect(await count(perStatement.url, 'select count(*) as n from schema_migrations')).toBe(MIGRATIONS);
      await migrate(single.db, { mode: 'transaction' });
      const schema = async (url: string) => {
        const q = direct(url);
        try {
          const columns =
            await q`select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns where table_schema = 'public' order by 1, 2`;
          const indexes = await q`select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' order by 1, 2`;
          // NOT NULL checks are named after OIDs, which differ between databases: left out.
          const constraints =
            await q`select table_name, constraint_name, constraint_type from information_schema.table_constraints where table_schema = 'public' and constraint_type <> 'CHECK' order by 1, 2`;
          return JSON.stringify({ columns, indexes, constraints });
        } finally {
          await q.end();
        }
      };
      expect(await schema(perStatement.url)).toBe(await schema(oneTx.url));
    } finally {
      await Promise.all([...conns, single].map((c) => c.close()));
      await Promise.all([perStatement.dispose(), oneTx.dispose()]);
    }
  });

  /** A fresh database whose migration lease another instance holds for `life` (an SQL interval). */
  async function leaseHeld(holder: string, life: string) {
    const db = await freshPostgres();
    const database = await connectPostgres({ url: db.url, poolSize: 2 });
    const q = direct(db.url);
    await q`CREATE TABLE schema_migration_lease (id int PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL)`;
    await q`INSERT INTO schema_migration_lease VALUES (1, ${holder}, now() + ${life}::interval)`;
    await q.end();
    return {
      url: db.url,
      database,
      dispose: async () => {
        await database.close();
        await db.dispose();
      },
    };
  }

  it('waits out the lease of an instance that died while migrating, then takes over; gives up on a live holder after waitMs', async () => {
    // A holder that will never renew: its lease runs out in 1.5 s.
    const crashed = await leaseHeld('crashed-instance', '1500 milliseconds');
    const live = await leaseHeld('live-instance', '1 minute');
    try {
      const started = Date.now();
      expect(await migrate(crashed.database.db, { waitMs: 10_000 })).toEqual({ applied: MIGRATIONS });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
      expect(await count(crashed.url, 'select count(*) as n from schema_migration_lease')).toBe(0);

      await expect(migrate(live.database.db, { waitMs: 500 })).rejects.toThrow(/another instance holds the migration lease/);
      expect(await count(live.url, 'select count(*) as n from schema_migrations')).toBe(0);
    } finally {
      await crashed.dispose();
      await live.dispose();
    }
  });
});
