// Migrations and start-up seeding: safe when instances start together; the
// standalone `npm run db:migrate` applies them too.
import { spawnSync } from 'node:child_process';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/app.js';
import { connectPostgres, tlsFromUrl } from '../../src/db/connect.js';
import { describeDbError } from '../../src/db/errors.js';
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

describe('migrations and seeding', () => {
  it('lets four instances start together on an empty database: one schema, four roles, one admin', async () => {
    const db = await freshPostgres();
    const config = testConfig();
    const conns = await Promise.all([1, 2, 3, 4].map(() => connectPostgres({ url: db.url, poolSize: 2 })));
    try {
      const results = await Promise.allSettled(conns.map((database) => prepareDatabase({ database, config, store: new MemoryStore() })));
      // The SQLSTATE and driver message (not just drizzle's "Failed query"), so a failure says why.
      expect(results.filter((r) => r.status === 'rejected').map((r) => describeDbError((r as PromiseRejectedResult).reason))).toEqual([]);
      expect(await count(db.url, 'select count(*) as n from schema_migrations')).toBe(1);
      expect(await count(db.url, 'select count(*) as n from roles where built_in')).toBe(4);
      expect(await count(db.url, `select count(*) as n from users where email = '${ADMIN.email}'`)).toBe(1);
      expect(await count(db.url, "select count(*) as n from user_roles where role_name = 'admin'")).toBe(1);
      // And again: idempotent.
      await prepareDatabase({ database: conns[0]!, config, store: new MemoryStore() });
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
      expect(run.stdout).toMatch(/migrations applied: 1 \(postgres\)/);
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
});
