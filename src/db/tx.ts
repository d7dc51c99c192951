// The one way to run a multi-statement write: SERIALIZABLE (CockroachDB's only
// level, and PostgreSQL's strictest), retried on serialization failures.
import type { PgTransaction, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import type { Db } from './connect.js';
import { isSerializationFailure } from './errors.js';
import type * as schema from './schema.js';

export type Tx = PgTransaction<PgQueryResultHKT, typeof schema, ExtractTablesWithRelations<typeof schema>>;

/**
 * `retries` is required: every retry is counted (db_transaction_retries_total),
 * on request paths and at start alike.
 */
export type TxOptions = { retries: { inc(): void }; maxAttempts?: number; onRetry?: (attempt: number, err: unknown) => void };

/** withTx bound to a database and its retry counter. */
export type TxRunner = <T>(fn: (tx: Tx) => Promise<T>) => Promise<T>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function withTx<T>(db: Db, fn: (tx: Tx) => Promise<T>, opts: TxOptions): Promise<T> {
  return retrying(() => db.transaction(fn as (tx: unknown) => Promise<T>, { isolationLevel: 'serializable' }), opts);
}

/**
 * One statement (atomic on its own, no BEGIN/COMMIT round trips), retried like
 * a transaction: a SERIALIZABLE database may refuse a single statement too.
 */
export async function retrying<T>(fn: () => Promise<T>, opts: TxOptions): Promise<T> {
  const maxAttempts = opts.maxAttempts ?? 10;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isSerializationFailure(err) || attempt >= maxAttempts) throw err;
      opts.retries.inc();
      opts.onRetry?.(attempt, err);
      // Full jitter on an exponential base, capped: spreads competing retries apart.
      await sleep(Math.random() * Math.min(200, 5 * 2 ** attempt));
    }
  }
}
