// Keyset pagination, newest first, in the exact shape of the indexes. PostgreSQL
// uses an index for ORDER BY only when the NULLS placement matches too:
// - indexes declared with `.desc()` are `DESC NULLS LAST` (what drizzle-kit
//   writes), so queries on them say NULLS LAST (a plain DESC means NULLS FIRST
//   there, and sorted the whole table for every first page);
// - the audit log's indexes are ascending (its primary key (at, id) cannot be
//   declared DESC), read backwards, which yields plain DESC (NULLS FIRST).
// The columns are NOT NULL either way: only the plan differs, not the order.
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';

export const newestFirst = (at: AnyColumn, id: AnyColumn): SQL[] => [sql`${at} desc nulls last`, sql`${id} desc nulls last`];

/** Newest first over ascending indexes (the audit log), scanned backwards. */
export const newestFirstBackward = (at: AnyColumn, id: AnyColumn): SQL[] => [sql`${at} desc`, sql`${id} desc`];

/** Rows strictly after the cursor in newest-first order: one row comparison the index can range-scan. */
export const olderThan = (at: AnyColumn, id: AnyColumn, cursor: { at: Date; id: string }): SQL =>
  sql`(${at}, ${id}) < (${cursor.at.toISOString()}::timestamptz, ${cursor.id}::uuid)`;

/** olderThan for prepared statements: the cursor comes from the placeholders `cursorAt` and `cursorId`. */
export const olderThanPlaceholders = (at: AnyColumn, id: AnyColumn): SQL =>
  sql`(${at}, ${id}) < (${sql.placeholder('cursorAt')}::timestamptz, ${sql.placeholder('cursorId')}::uuid)`;

type Keyed = { at: Date; id: string };

/** olderThan, or no condition for the first page. */
export const olderOrAll = (at: AnyColumn, id: AnyColumn, after: Keyed | undefined): SQL | undefined =>
  after ? olderThan(at, id, after) : undefined;

/** Every row of a keyset-paged query, newest first, `size` rows at a time (for streaming a user's rows). */
export async function* allPages<R>(
  fetch: (after: Keyed | undefined, size: number) => Promise<R[]>,
  keyOf: (r: R) => Keyed,
  size = 500,
): AsyncGenerator<R> {
  let after: Keyed | undefined;
  for (;;) {
    const rows = await fetch(after, size);
    yield* rows;
    if (rows.length < size) return;
    after = keyOf(rows[rows.length - 1]!);
  }
}
