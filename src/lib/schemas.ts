// Schema pieces shared by every module: text the database can store, and
// times it can represent.
import { z } from 'zod';
import { isPlainText } from './text.js';

export const PLAIN_TEXT = { message: 'Must not contain control characters or unpaired surrogates' };

/** For single-line fields (names, titles, emails, filters): no control character at all. */
export const singleLine = (s: string) => isPlainText(s);
/** For multi-line fields (a post body): tab, CR and LF allowed, other controls not. */
export const multiLine = (s: string) => isPlainText(s, { multiline: true });

// What both PostgreSQL and CockroachDB store as timestamptz, and JavaScript prints as YYYY-MM-DD.
// Date.UTC maps years 0-99 to 1900-1999, so year 1 is set explicitly.
export const EARLIEST_TIME_MS = new Date('0001-01-01T00:00:00.000Z').getTime();
export const LATEST_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export const isStorableTime = (ms: number) => Number.isFinite(ms) && ms >= EARLIEST_TIME_MS && ms <= LATEST_TIME_MS;

/** An ISO 8601 time (with offset) between the years 0001 and 9999 once in UTC. */
export const isoTimeSchema = z.iso
  .datetime({ offset: true, message: 'Must be an ISO 8601 time' })
  .refine((s) => isStorableTime(new Date(s).getTime()), { message: 'Must be between the years 0001 and 9999' });

/**
 * The paths of strings in a validated value that no database stores as sent:
 * NUL (PostgreSQL refuses it in text) or an unpaired surrogate (UTF-8 has no
 * encoding for it). Checked for every request's input, whatever its schema says.
 */
export function unstorableStrings(value: unknown, path: string[] = [], out: string[] = []): string[] {
  if (typeof value === 'string') {
    if (value.includes('\u0000') || !value.isWellFormed()) out.push(path.join('.'));
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) unstorableStrings(v, [...path, String(i)], out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) unstorableStrings(v, [...path, k], out);
  }
  return out;
}

// Fields several modules take.

export const IdParam = z.strictObject({ id: z.uuid({ message: 'Must be a UUID' }) });

export const emailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .refine(singleLine, PLAIN_TEXT)
  .pipe(z.email({ message: 'Must be an email address' }));

/** 8–128 Unicode code points after NFKC normalization (NIST SP 800-63B). */
export const newPasswordSchema = z.string().refine(
  (pw) => {
    const n = [...pw.normalize('NFKC')].length;
    return n >= 8 && n <= 128;
  },
  { message: 'Must be 8 to 128 characters' },
);

export const nameSchema = z.string().trim().min(1, 'Must not be empty').max(100, 'At most 100 characters').refine(singleLine, PLAIN_TEXT);

export const roleNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{1,39}$/, 'Role names match ^[a-z][a-z0-9_-]{1,39}$');

export const limitSchema = z
  .string()
  .regex(/^\d{1,3}$/, 'Must be an integer from 1 to 100')
  .transform(Number)
  .pipe(z.number().int().min(1, 'Must be at least 1').max(100, 'Must be at most 100'))
  .default(20);

/** A second-factor code: 6 TOTP digits or a recovery code (xxxx-xxxx-xxxx-xxxx); anything else is just wrong. */
export const mfaCodeSchema = z.string().min(1).max(64).refine(singleLine, PLAIN_TEXT);
