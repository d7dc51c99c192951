// Opaque keyset cursors: (timestamp, id) of the last item of a page.
import { isStorableTime } from './schemas.js';

/** The shape of every id this service issues. */
export const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);

export type Cursor = { at: Date; id: string };

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.at.getTime()}.${c.id}`, 'utf8').toString('base64url');
}

/** The cursor, or null when it is not one this service issued. */
export function decodeCursor(raw: string): Cursor | null {
  if (raw.length > 200) return null;
  const text = Buffer.from(raw, 'base64url').toString('utf8');
  const m = /^(\d{1,15})\.(.+)$/.exec(text);
  if (!m || !isUuid(m[2]!)) return null;
  const ms = Number(m[1]);
  // Only times the database can compare with (a crafted one past 9999 is refused, not a 500).
  return isStorableTime(ms) ? { at: new Date(ms), id: m[2]! } : null;
}
