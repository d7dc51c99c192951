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
 * Walked with an explicit stack, not recursion: however deep the value, the
 * walk cannot overflow the call stack (bodies are bounded too: see body.ts).
 */
type Visit = { v: unknown; key: string; parent: Visit | undefined };

const pathOf = (node: Visit): string => {
  const keys: string[] = [];
  for (let n: Visit | undefined = node; n?.parent !== undefined; n = n.parent) keys.push(n.key);
  return keys.reverse().join('.');
};

export function unstorableStrings(value: unknown): string[] {
  const out: string[] = [];
  // Depth first, in document order (children pushed last first); a node's path is built only when it is reported.
  const stack: Visit[] = [{ v: value, key: '', parent: undefined }];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    const v = node.v;
    if (typeof v === 'string') {
      if (v.includes('\u0000') || !v.isWellFormed()) out.push(pathOf(node));
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], key: String(i), parent: node });
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ v: entries[i]![1], key: entries[i]![0], parent: node });
    }
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
