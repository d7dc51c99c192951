// The audit log's write path: entries are buffered and written in multi-row
// inserts off the request path. The buffer is bounded; what cannot be kept is
// counted and logged, never dropped silently. stop() flushes everything.
// Text is made storable on the way in (no control characters or lone
// surrogates, which the database refuses), and a batch the database refuses
// for its data is split so that only the rows it can never take are dropped.
import { sql } from 'drizzle-orm';
import type { Db } from '../db/connect.js';
import { dbErrorCode, isDataRefusal } from '../db/errors.js';
import { preparedSql } from '../db/prepared.js';
import { auditLogs } from '../db/schema.js';
import type { Logger } from '../lib/logger.js';
import { storableText } from '../lib/text.js';
import type { Metrics } from '../lib/metrics.js';

export type AuditEntry = Omit<typeof auditLogs.$inferInsert, 'id'>;

const QUOTE_OR_BACKSLASH = /["\\]/;
const QUOTES_AND_BACKSLASHES = /["\\]/g;

/**
 * A PostgreSQL array literal ('{"a","b",NULL}'), sent as one text parameter:
 * drivers differ in how (and whether) they serialize JS arrays. Strings are
 * always quoted (an unquoted NULL would be a null); numbers need no quotes.
 */
export function arrayLiteral(values: readonly (string | number | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'number') out += String(v);
    else out += QUOTE_OR_BACKSLASH.test(v) ? `"${v.replace(QUOTES_AND_BACKSLASHES, '\\$&')}"` : `"${v}"`;
  }
  return `${out}}`;
}

const COLUMNS = ['at', 'request_id', 'actor_id', 'ip', 'method', 'path', 'route', 'status', 'action', 'detail', 'actor_client'] as const;
const p = (name: (typeof COLUMNS)[number], type: string) => sql`${sql.placeholder(name)}::${sql.raw(type)}[]`;

/**
 * One statement with one array parameter per column (unnest), whatever the
 * batch size: building a 500-row VALUES list cost more CPU than the requests
 * it logged (profiled). Prepared once per connection (its text never varies).
 * CockroachDB and PostgreSQL both accept it.
 */
const insertStatement = preparedSql(
  'audit_insert',
  sql`INSERT INTO ${auditLogs} (${sql.raw(COLUMNS.join(', '))})
    SELECT * FROM unnest(${p('at', 'timestamptz')}, ${p('request_id', 'text')}, ${p('actor_id', 'uuid')}, ${p('ip', 'text')},
      ${p('method', 'text')}, ${p('path', 'text')}, ${p('route', 'text')}, ${p('status', 'int')}, ${p('action', 'text')}, ${p('detail', 'text')},
      ${p('actor_client', 'text')})`,
);

/**
 * Buffered entries, one array per column, text already made storable. No
 * object per entry is kept: a buffer of entry objects lived through young-
 * generation collections, was promoted and tripled the GC time (profiled).
 */
export class AuditRows {
  at: number[] = [];
  requestId: string[] = [];
  actorId: (string | null)[] = [];
  ip: string[] = [];
  method: string[] = [];
  path: string[] = [];
  route: string[] = [];
  status: number[] = [];
  action: string[] = [];
  detail: (string | null)[] = [];
  actorClient: (string | null)[] = [];

  static of(entries: readonly AuditEntry[]): AuditRows {
    const rows = new AuditRows();
    for (const e of entries) rows.push(e);
    return rows;
  }

  get length(): number {
    return this.at.length;
  }

  push(e: AuditEntry): void {
    this.at.push(e.at.getTime());
    this.requestId.push(storableText(e.requestId));
    this.actorId.push(e.actorId ?? null);
    this.ip.push(storableText(e.ip));
    this.method.push(storableText(e.method));
    this.path.push(storableText(e.path));
    this.route.push(storableText(e.route));
    this.status.push(e.status);
    this.action.push(storableText(e.action));
    this.detail.push(e.detail == null ? null : storableText(e.detail));
    this.actorClient.push(e.actorClient == null ? null : storableText(e.actorClient));
  }

  private map(f: <T>(column: T[]) => T[]): AuditRows {
    const r = new AuditRows();
    for (const k of ROW_KEYS) (r[k] as unknown[]) = f(this[k] as unknown[]);
    return r;
  }

  /** Rows [from, to) as a new set. */
  slice(from: number, to?: number): AuditRows {
    return this.map((c) => c.slice(from, to));
  }

  /** Removes the first n rows and returns them. */
  take(n: number): AuditRows {
    return this.map((c) => c.splice(0, n));
  }

  /** Puts rows back in front (a batch to retry). */
  prepend(rows: AuditRows): void {
    for (const k of ROW_KEYS) (this[k] as unknown[]) = (rows[k] as unknown[]).concat(this[k]);
  }

  static concat(list: readonly AuditRows[]): AuditRows {
    const r = new AuditRows();
    for (const rows of list.toReversed()) r.prepend(rows);
    return r;
  }
}
const ROW_KEYS = ['at', 'requestId', 'actorId', 'ip', 'method', 'path', 'route', 'status', 'action', 'detail', 'actorClient'] as const;

/** One batch through the unnest() statement (exported for the COPY comparison in test/bench/lib/audit-copy.ts). */
export async function insertBatch(db: Db, batch: AuditRows): Promise<void> {
  await insertStatement(db, {
    at: arrayLiteral(batch.at.map((ms) => new Date(ms).toISOString())),
    request_id: arrayLiteral(batch.requestId),
    actor_id: arrayLiteral(batch.actorId),
    ip: arrayLiteral(batch.ip),
    method: arrayLiteral(batch.method),
    path: arrayLiteral(batch.path),
    route: arrayLiteral(batch.route),
    status: arrayLiteral(batch.status),
    action: arrayLiteral(batch.action),
    detail: arrayLiteral(batch.detail),
    actor_client: arrayLiteral(batch.actorClient),
  });
}

export type AuditOptions = { maxBuffer?: number; batchSize?: number; flushMs?: number; enabled?: boolean };

export class AuditWriter {
  private buffer = new AuditRows();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Write partial batches too (the timer, stop(), an explicit flush()); else full ones only. */
  private wantAll = false;
  private lastDropLog = 0;
  private readonly maxBuffer: number;
  private readonly batchSize: number;
  private readonly flushMs: number;
  readonly enabled: boolean;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    opts: AuditOptions = {},
  ) {
    this.maxBuffer = opts.maxBuffer ?? 50_000;
    this.batchSize = opts.batchSize ?? 500;
    this.flushMs = opts.flushMs ?? 250;
    this.enabled = opts.enabled ?? true;
  }

  record(entry: AuditEntry): void {
    if (!this.enabled) return;
    if (this.buffer.length >= this.maxBuffer) {
      this.drop(1, 'buffer full');
      return;
    }
    this.buffer.push(entry);
    if (this.buffer.length >= this.batchSize) void this.flush(false);
    else this.schedule(this.flushMs);
  }

  private schedule(ms: number): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
  }

  private drop(n: number, why: string): void {
    this.metrics.auditDropped.inc(n);
    const now = Date.now();
    if (now - this.lastDropLog > 5_000) {
      this.lastDropLog = now;
      this.logger.warn({ dropped: n, why }, 'audit entries dropped');
    }
  }

  /**
   * Write what is buffered. Concurrent calls share one writer loop. A full
   * batch triggers a write of full batches only: what arrives while a batch is
   * being written waits for the next full batch or the timer, instead of going
   * out in many small inserts (profiled: per-statement costs then dominated,
   * on both sides of the connection).
   */
  flush(all = true): Promise<void> {
    if (all) this.wantAll = true;
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
      if (this.buffer.length > 0) this.schedule(this.flushMs);
    });
    return this.flushing;
  }

  private async drain(): Promise<void> {
    while (this.buffer.length >= (this.wantAll ? 1 : this.batchSize)) {
      const batch = this.buffer.take(this.batchSize);
      const failure = await this.write(batch);
      if (failure) {
        // Transient (the database is away, a timeout, a conflict): keep the rows
        // for the next attempt while there is room.
        const room = this.maxBuffer - this.buffer.length;
        if (room > 0) this.buffer.prepend(failure.rest.slice(0, room));
        if (failure.rest.length > room) this.drop(failure.rest.length - room, 'buffer full while the database refused writes');
        this.logger.warn({ err: failure.err, pending: this.buffer.length }, 'audit write failed; will retry');
        this.schedule(1_000);
        return;
      }
    }
    this.wantAll = false;
  }

  /**
   * Insert a batch; when the database refuses its data, halve it until the
   * rows it will never take are isolated, drop those (counted, logged once
   * per batch with their SQLSTATE, never their values) and write the rest.
   * Returns what is left after a transient failure, in order.
   */
  private async write(batch: AuditRows): Promise<{ rest: AuditRows; err: unknown } | undefined> {
    const chunks = [batch];
    const refused = new Map<string, number>();
    try {
      while (chunks.length > 0) {
        const chunk = chunks[0]!;
        try {
          await insertBatch(this.db, chunk);
          this.metrics.auditWritten.inc(chunk.length);
          chunks.shift();
        } catch (err) {
          if (!isDataRefusal(err)) return { rest: AuditRows.concat(chunks), err };
          chunks.shift();
          if (chunk.length === 1) {
            const code = dbErrorCode(err) ?? 'unknown';
            refused.set(code, (refused.get(code) ?? 0) + 1);
          } else {
            const mid = chunk.length >> 1;
            chunks.unshift(chunk.slice(0, mid), chunk.slice(mid));
          }
        }
      }
      return undefined;
    } finally {
      if (refused.size > 0) {
        const n = [...refused.values()].reduce((a, b) => a + b, 0);
        this.metrics.auditDropped.inc(n);
        this.logger.warn({ dropped: n, sqlstate: Object.fromEntries(refused) }, 'audit entries refused by the database were dropped');
      }
    }
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Write what is buffered now, in full batches and the partial one. */
  runOnce(): Promise<void> {
    return this.flush();
  }

  /**
   * Resolves once nothing is buffered or being written. While the database
   * refuses the writes it keeps trying, at the pace of the retry timer.
   */
  async idle(): Promise<void> {
    while (this.flushing || this.buffer.length > 0) {
      const before = this.buffer.length;
      await this.flush();
      if (this.buffer.length >= before) await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Graceful stop: flush until empty (or give up after the deadline). */
  async stop(deadlineMs = 5_000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const until = Date.now() + deadlineMs;
    while (this.buffer.length > 0 && Date.now() < until) {
      await this.flush();
      if (this.buffer.length > 0) await new Promise((r) => setTimeout(r, 200));
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.buffer.length > 0) this.drop(this.buffer.length, 'shutdown deadline passed');
  }
}
