// src/db/prepared.ts reaches into drizzle's private session (db._) to prepare
// raw statements under a name, which the sign-in's one-statement session start
// depends on. These tests pin that shape on both drivers: a drizzle upgrade
// that moves or changes it fails here first.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, type Database } from '../../src/db/connect.js';
import { prepareNamed, preparedSql } from '../../src/db/prepared.js';
import { rowsOf } from '../../src/db/rows.js';
import { BACKENDS, freshPostgres, openDatabase } from '../helpers/services.js';

const plusOne = preparedSql('pin_plus_one', sql`SELECT ${sql.placeholder('n')}::int + 1 AS pin_plus_one`);

describe.each(BACKENDS)('prepared statements on %s', (backend) => {
  let db: Awaited<ReturnType<typeof openDatabase>>;
  beforeAll(async () => {
    db = await openDatabase(backend);
  });
  afterAll(async () => {
    await db?.dispose();
  });

  it('runs a named raw statement with its values, again and again', async () => {
    for (const n of [1, 41, -3]) {
      const rows = rowsOf<{ pin_plus_one: number }>(await plusOne(db.database.db, { n }));
      expect(rows.map((r) => Number(r.pin_plus_one))).toEqual([n + 1]);
    }
  });

  it('refuses clearly, not with a TypeError, a database without the private session', () => {
    const query = { sql: 'SELECT 1', params: [] };
    expect(() => prepareNamed({} as typeof db.database.db, query, 'nothing')).toThrow(/db\._\.session\.prepareQuery/);
  });
});

describe.runIf(BACKENDS.includes('postgres'))('a named statement on PostgreSQL', () => {
  let database: Database;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    const fresh = await freshPostgres();
    // One connection: the statement and the look at pg_prepared_statements share a session.
    database = await connectPostgres({ url: fresh.url, poolSize: 1 });
    dispose = async () => {
      await database.close();
      await fresh.dispose();
    };
  });
  afterAll(async () => {
    await dispose?.();
  });

  it('is prepared by the server (not sent as an unnamed statement each time)', async () => {
    await plusOne(database.db, { n: 1 });
    const rows = rowsOf<{ n: number }>(
      await database.db.execute(sql`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE '%AS pin_plus_one%'`),
    );
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
  });
});
