// Prepared statements for the hot paths. drizzle over postgres.js prepares a
// query only when it is given a name; every other query goes out as an unnamed
// statement, which postgres.js first sends alone to have it described (one
// extra round trip) and PostgreSQL parses and plans on every call. A prepared
// statement is parsed and described once per connection, then each call is a
// single Bind/Execute (the measured gain: test/bench/README.md).
//
// Only fixed-shape statements belong here: postgres.js keeps every prepared
// statement for the connection's lifetime, so a query whose text varies (an
// IN list, optional filters) would grow that cache without bound.
import type { Query, SQL } from 'drizzle-orm';
import { PgDialect, type PgPreparedQuery, type PreparedQueryConfig } from 'drizzle-orm/pg-core';
import type { Db } from './connect.js';

const dialect = new PgDialect();

/**
 * A raw statement prepared under a name on this database. Drizzle has no
 * public way to do that, so this is the one place that reaches into its
 * private session (`db._`); test/integration/prepared.test.ts pins that shape,
 * so a drizzle upgrade that changes it fails there, not on a sign-in.
 */
export function prepareNamed(db: Db, query: Query, name: string): PgPreparedQuery<PreparedQueryConfig> {
  const session = (db as { _?: { session?: { prepareQuery?: unknown } } })._?.session;
  if (typeof session?.prepareQuery !== 'function') {
    throw new Error('drizzle-orm no longer has db._.session.prepareQuery: see prepareNamed in src/db/prepared.ts');
  }
  return db._.session.prepareQuery(query, undefined, name, false);
}

/**
 * A raw statement whose values are `sql.placeholder(name)`s, prepared on each
 * database the first time it runs there. Returns what `db.execute` would
 * (read it with rowsOf).
 */
export function preparedSql(name: string, statement: SQL): (db: Db, values: Record<string, unknown>) => Promise<unknown> {
  const query = dialect.sqlToQuery(statement);
  const byDb = new WeakMap<Db, PgPreparedQuery<PreparedQueryConfig>>();
  return (db, values) => {
    let prepared = byDb.get(db);
    if (!prepared) {
      prepared = prepareNamed(db, query, name);
      byDb.set(db, prepared);
    }
    return prepared.execute(values);
  };
}

/** A query-builder statement (`.prepare(name)` with placeholders), built once per database. */
export function preparedQuery<Q>(build: (db: Db) => Q): (db: Db) => Q {
  const byDb = new WeakMap<Db, Q>();
  return (db) => {
    let prepared = byDb.get(db);
    if (!prepared) {
      prepared = build(db);
      byDb.set(db, prepared);
    }
    return prepared;
  };
}
