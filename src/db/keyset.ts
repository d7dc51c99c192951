// Keyset pagination, newest first, in the exact shape of the indexes:
// drizzle-kit writes `DESC NULLS LAST` index columns, and PostgreSQL uses such
// an index for ORDER BY only when the query says NULLS LAST too (a plain DESC
// means NULLS FIRST there, and sorted all 100k posts for every first page).
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';

export const newestFirst = (at: AnyColumn, id: AnyColumn): SQL[] => [sql`${at} desc nulls last`, sql`${id} desc nulls last`];

/** Rows strictly after the cursor in newest-first order: one row comparison the index can range-scan. */
export const olderThan = (at: AnyColumn, id: AnyColumn, cursor: { at: Date; id: string }): SQL =>
  sql`(${at}, ${id}) < (${cursor.at.toISOString()}::timestamptz, ${cursor.id}::uuid)`;
