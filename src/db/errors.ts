// Classifies database errors by SQLSTATE, looking through Drizzle's wrapper
// (whose message holds the query parameters: logs use describeError in lib/logger.ts).

/** The SQLSTATE (or driver code such as ECONNREFUSED) of an error, if any. */
export function dbErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export const isSerializationFailure = (err: unknown) => {
  const code = dbErrorCode(err);
  return code === '40001' || code === '40P01';
};

export const isUniqueViolation = (err: unknown) => dbErrorCode(err) === '23505';

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  // A statement or lock wait past DATABASE_STATEMENT_TIMEOUT_MS / DATABASE_LOCK_TIMEOUT_MS:
  // the database is too busy for this request now, which is a 503, not a bug.
  '57014',
  '55P03',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/** True when the database is unreachable or refusing work: answered with 503, not 500. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = dbErrorCode(err);
  if (!code) return false;
  return UNAVAILABLE_CODES.has(code) || code.startsWith('08');
}

/**
 * True when the database refused the data itself (SQLSTATE class 22, data
 * exception, or 23, integrity violation): the same rows will never be accepted,
 * so retrying them is pointless. Anything else may pass on a later attempt.
 */
export function isDataRefusal(err: unknown): boolean {
  const code = dbErrorCode(err);
  return code !== undefined && /^2[23][0-9A-Z]{3}$/.test(code);
}
