// Keyset pages, newest first: the request's cursor in, one page and the next
// cursor out. Every list fetches limit + 1 rows to know whether there is more.
import { decodeCursor, encodeCursor, type Cursor } from './cursor.js';
import { problem } from './problem.js';

export type Page<T> = { items: T[]; nextCursor: string | null };

/** The position a cursor names, or 400 validation_failed when it is not one this service issued. */
export function cursorOf(raw: string): Cursor {
  const c = decodeCursor(raw);
  if (!c) problem('validation_failed', 'The cursor is not valid', { errors: [{ path: 'cursor', message: 'Invalid cursor' }] });
  return c;
}

/** One page from limit + 1 rows: the first `limit`, and a cursor after the last when there were more. */
export function pageOf<R, T>(rows: R[], limit: number, positionOf: (row: R) => Cursor, toItem: (row: R) => T): Page<T> {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toItem),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(positionOf(last)) : null,
  };
}
