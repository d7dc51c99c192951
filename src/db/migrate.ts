// Applies drizzle-kit's migrations, each in its own transaction (CockroachDB
// restricts schema changes inside one big transaction). Two instances starting
// together are safe without advisory locks: each migration first inserts its
// row into the journal table, so the second instance blocks on that key and
// then skips the migration when the first commits.
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type { Db } from './connect.js';
import { dbErrorCode, isSerializationFailure, isUniqueViolation } from './errors.js';
import { rowsOf } from './rows.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

const JOURNAL = 'schema_migrations';

export async function migrate(db: Db, folder = MIGRATIONS_FOLDER): Promise<{ applied: number }> {
  const migrations = readMigrationFiles({ migrationsFolder: folder });
  for (let attempt = 0; ; attempt++) {
    try {
      await db.execute(
        sql.raw(
          `CREATE TABLE IF NOT EXISTS ${JOURNAL} (hash text PRIMARY KEY, created_at bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
        ),
      );
      break;
    } catch (err) {
      // Concurrent CREATE TABLE IF NOT EXISTS can collide in the catalog: a
      // unique violation on pg_type, or 42P07 duplicate_table when both passed
      // the existence check (seen in CI with four instances starting together).
      const code = dbErrorCode(err);
      const collided = isUniqueViolation(err) || isSerializationFailure(err) || code === '42P07' || code === '42710';
      if (attempt >= 5 || !collided) throw err;
    }
  }
  let applied = 0;
  for (const m of migrations) {
    for (let attempt = 0; ; attempt++) {
      const done = await db.execute<{ hash: string }>(sql`SELECT hash FROM ${sql.raw(JOURNAL)} WHERE hash = ${m.hash}`);
      if (rowsOf(done).length > 0) break;
      try {
        await db.transaction(async (tx) => {
          await tx.execute(sql`INSERT INTO ${sql.raw(JOURNAL)} (hash, created_at) VALUES (${m.hash}, ${m.folderMillis})`);
          for (const stmt of m.sql) if (stmt.trim()) await tx.execute(sql.raw(stmt));
        });
        applied++;
        break;
      } catch (err) {
        if (isUniqueViolation(err)) break; // applied by another instance meanwhile
        if (isSerializationFailure(err) && attempt < 10) continue;
        throw err;
      }
    }
  }
  return { applied };
}
