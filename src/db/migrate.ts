// Applies drizzle-kit's migrations, correctly on PostgreSQL (and PGlite) and on
// CockroachDB, when several instances start together:
// - A lease row serialises the instances: claimed with a conditional upsert
//   that takes it only when free or expired, renewed while migrations run,
//   released at the end. It does not depend on the DDL's transaction, so it
//   holds on CockroachDB too, and a dead holder's lease simply expires.
// - PostgreSQL runs each migration in one transaction, its journal row last:
//   all of it or nothing.
// - CockroachDB runs DDL inside a multi-statement transaction only with
//   caveats (a failure after other statements committed; from v25.1
//   autocommit_before_ddl commits before each DDL), so there each statement
//   runs on its own and the journal row is written only after all of them
//   succeeded. A half-applied migration is re-run: statements that find their
//   object already there (or already gone) count as done.
// The journal is keyed by each migration's timestamp (as drizzle's own
// migrator does), so a migration whose text is edited is not applied again.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type { Db } from './connect.js';
import { dbErrorCode, isSerializationFailure, isUniqueViolation } from './errors.js';
import { rowsOf } from './rows.js';
import { retrying, withTx, type TxOptions } from './tx.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

const JOURNAL = 'schema_migrations';
const LEASE = 'schema_migration_lease';

export type MigrateOptions = {
  folder?: string;
  /** `transaction` (PostgreSQL) or `per-statement` (CockroachDB); detected from the server when unset. */
  mode?: 'transaction' | 'per-statement';
  /** How long a lease lasts unless renewed (a crashed holder's lease frees itself after this). */
  leaseMs?: number;
  /** How long to wait for another instance's lease before giving up. */
  waitMs?: number;
  /** Counts serialization retries (the app passes db_transaction_retries_total). */
  retries?: TxOptions['retries'];
};

const UNCOUNTED: TxOptions['retries'] = { inc() {} };

// SQLSTATEs that mean a DDL statement's effect is already there: a duplicate
// table (or index), object, column or schema; and, for a DROP only, an
// undefined table or object.
const ALREADY_THERE = new Set(['42P07', '42710', '42701', '42P06']);
const ALREADY_GONE = new Set(['42P01', '42704']);
const DROPS = /^\s*(?:--[^\n]*\n\s*)*(?:DROP\b|ALTER\s+TABLE\s+\S+\s+DROP\b)/i;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function migrate(db: Db, opts: MigrateOptions | string = {}): Promise<{ applied: number }> {
  const o = typeof opts === 'string' ? { folder: opts } : opts;
  const migrations = readMigrationFiles({ migrationsFolder: o.folder ?? MIGRATIONS_FOLDER });
  await ensureTables(db);
  const pending = async () => {
    const done = new Set(
      rowsOf<{ created_at: string | number }>(await db.execute(sql.raw(`SELECT created_at FROM ${JOURNAL}`))).map((r) =>
        Number(r.created_at),
      ),
    );
    return migrations.filter((m) => !done.has(m.folderMillis));
  };
  // The usual start: nothing to do, no lease taken.
  if ((await pending()).length === 0) return { applied: 0 };

  const mode = o.mode ?? ((await isCockroach(db)) ? 'per-statement' : 'transaction');
  const lease = await acquireLease(db, o.leaseMs ?? 30_000, o.waitMs ?? 120_000);
  try {
    let applied = 0;
    // Another instance may have applied some while this one waited.
    for (const m of await pending()) {
      await lease.check();
      const record = sql`INSERT INTO ${sql.raw(JOURNAL)} (hash, created_at) VALUES (${m.hash}, ${m.folderMillis})`;
      const statements = m.sql.filter((s) => s.trim());
      const retries = o.retries ?? UNCOUNTED;
      if (mode === 'transaction') {
        await withTx(
          db,
          async (tx) => {
            for (const stmt of statements) await tx.execute(sql.raw(stmt));
            await tx.execute(record);
          },
          { retries },
        );
      } else {
        for (const stmt of statements) await runAlone(db, stmt, retries);
        await retrying(() => db.execute(record), { retries });
      }
      applied++;
    }
    return { applied };
  } finally {
    await lease.release();
  }
}

/** One DDL statement in its own implicit transaction; one whose effect is already there counts as done. */
async function runAlone(db: Db, stmt: string, retries: TxOptions['retries']): Promise<void> {
  try {
    await retrying(() => db.execute(sql.raw(stmt)), { retries });
  } catch (err) {
    const code = dbErrorCode(err) ?? '';
    if (ALREADY_THERE.has(code) || (ALREADY_GONE.has(code) && DROPS.test(stmt))) return;
    throw err;
  }
}

async function isCockroach(db: Db): Promise<boolean> {
  const [row] = rowsOf<{ v: string }>(await db.execute(sql`SELECT version() AS v`));
  return /cockroach/i.test(row?.v ?? '');
}

async function ensureTables(db: Db): Promise<void> {
  for (const ddl of [
    `CREATE TABLE IF NOT EXISTS ${JOURNAL} (hash text PRIMARY KEY, created_at bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE TABLE IF NOT EXISTS ${LEASE} (id int PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL)`,
  ]) {
    for (let attempt = 0; ; attempt++) {
      try {
        await db.execute(sql.raw(ddl));
        break;
      } catch (err) {
        // Concurrent CREATE TABLE IF NOT EXISTS can collide in the catalog: a
        // unique violation on pg_type, or 42P07 when both passed the existence check.
        const code = dbErrorCode(err);
        const collided = isUniqueViolation(err) || isSerializationFailure(err) || code === '42P07' || code === '42710';
        if (attempt >= 5 || !collided) throw err;
      }
    }
  }
}

type Lease = { check(): Promise<void>; release(): Promise<void> };

/**
 * Take the one lease row when it is free or expired (the database's clock
 * decides), waiting for another holder up to `waitMs`; renewed every third of
 * its life while held. check() throws once it has been lost.
 */
async function acquireLease(db: Db, leaseMs: number, waitMs: number): Promise<Lease> {
  const me = randomUUID();
  const life = `${leaseMs} milliseconds`;
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      const got = rowsOf<{ holder: string }>(
        await db.execute(sql`
          INSERT INTO ${sql.raw(LEASE)} (id, holder, expires_at) VALUES (1, ${me}, now() + ${life}::interval)
          ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
          WHERE ${sql.raw(LEASE)}.expires_at < now()
          RETURNING holder`),
      );
      if (got[0]?.holder === me) break;
    } catch (err) {
      if (!isSerializationFailure(err)) throw err;
    }
    if (Date.now() > until) throw new Error(`migrations: another instance holds the migration lease for more than ${waitMs} ms`);
    await sleep(100 + Math.random() * 200);
  }
  let lost: Error | undefined;
  const renew = async () => {
    try {
      const kept = rowsOf(
        await db.execute(
          sql`UPDATE ${sql.raw(LEASE)} SET expires_at = now() + ${life}::interval WHERE id = 1 AND holder = ${me} RETURNING id`,
        ),
      );
      if (kept.length === 0) lost = new Error('migrations: the migration lease was lost (expired and taken by another instance)');
    } catch {
      // A failed renewal is tried again; the lease only matters once it expires.
    }
  };
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      renewing = renew();
    },
    Math.max(50, Math.floor(leaseMs / 3)),
  );
  timer.unref?.();
  return {
    async check() {
      if (lost) throw lost;
    },
    async release() {
      clearInterval(timer);
      await renewing;
      await db.execute(sql`DELETE FROM ${sql.raw(LEASE)} WHERE id = 1 AND holder = ${me}`);
    },
  };
}
