// pino with secrets redacted wherever they might appear in a logged object, and
// one error serializer that every `{ err }` in every log line goes through.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'cookie',
  '*.cookie',
  'password',
  '*.password',
  'currentPassword',
  '*.currentPassword',
  'passwordHash',
  '*.passwordHash',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'token',
  '*.token',
  'params',
  '*.params',
];

/** What a log line may say about a database error: never its message, query or parameters. */
export type DbErrorDescription = {
  kind: 'database';
  code: string;
  constraint?: string;
  table?: string;
  column?: string;
};
export type ErrorDescription = DbErrorDescription | { kind: 'error'; name: string; message: string; code?: string; stack?: string };

const SQLSTATE = /^[0-9A-Z]{5}$/;
const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The database error in an error's cause chain, if any. Drizzle wraps driver
 * errors in one whose message is `Failed query: … params: …` (and whose name
 * is plain 'Error'); PGlite's and postgres.js's errors carry a SQLSTATE `code`
 * but put values in their messages too (`invalid input syntax for type uuid: "…"`).
 */
function databaseError(err: unknown): DbErrorDescription | undefined {
  let e: unknown = err;
  let wrapped = false;
  for (let depth = 0; depth < 6 && e !== null && typeof e === 'object'; depth++) {
    const o = e as Record<string, unknown>;
    if ('query' in o && 'params' in o) wrapped = true;
    const code = o.code;
    if (typeof code === 'string' && SQLSTATE.test(code)) {
      const d: DbErrorDescription = { kind: 'database', code };
      const constraint = str(o.constraint) ?? str(o.constraint_name);
      const table = str(o.table) ?? str(o.table_name);
      const column = str(o.column) ?? str(o.column_name);
      if (constraint) d.constraint = constraint;
      if (table) d.table = table;
      if (column) d.column = column;
      return d;
    }
    e = o.cause;
  }
  // A failed query without a SQLSTATE (the connection dropped mid-query, say).
  return wrapped ? { kind: 'database', code: 'unknown' } : undefined;
}

/**
 * A log-safe description of anything thrown. Database errors are reduced to
 * SQLSTATE, constraint, table and column; other errors keep name, message,
 * code and stack (they do not carry statement parameters).
 */
export function describeError(err: unknown): ErrorDescription {
  if (err !== null && typeof err === 'object' && (err as { kind?: unknown }).kind !== undefined && !(err instanceof Error)) {
    return err as ErrorDescription; // already described
  }
  const db = databaseError(err);
  if (db) return db;
  if (err instanceof Error) {
    const code = str((err as { code?: unknown }).code);
    return { kind: 'error', name: err.name, message: err.message, ...(code ? { code } : {}), ...(err.stack ? { stack: err.stack } : {}) };
  }
  return { kind: 'error', name: typeof err, message: String(err) };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Every `{ err }` is described, wherever it is logged from.
      serializers: { err: describeError },
      hooks: {
        // pino makes a bare error's message the line's msg; a database error's
        // message holds values, so the error goes under `err` like any other.
        logMethod(args, method) {
          const [first, ...rest] = args as unknown[];
          if (first instanceof Error) {
            const msg =
              typeof rest[0] === 'string' ? rest.shift() : describeError(first).kind === 'database' ? 'database error' : first.message;
            return method.apply(this, [{ err: first }, msg, ...rest] as Parameters<typeof method>);
          }
          return method.apply(this, args);
        },
      },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
