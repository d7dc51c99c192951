// Usage counters for /admin/stats, kept as local deltas and added to the
// stats_counters table in batched upserts, so they survive restarts and add up
// across instances. A few of them are also kept per hour (stats_hourly) for
// /admin/stats/timeline, by the same batches.
import { lt, sql } from 'drizzle-orm';
import { statsCounters, statsHourly } from '../db/schema.js';
import type { TxRunner } from '../db/tx.js';
import type { Logger } from '../lib/logger.js';

export type CounterName =
  | 'auth.loginSucceeded'
  | 'auth.loginFailed'
  | 'auth.refreshed'
  | 'auth.refreshReused'
  | 'access.allowed'
  | 'access.denied'
  /** Requests refused with 429 rate_limited, whichever limit refused them. */
  | 'requests.rateLimited'
  | `perm.${string}.allowed`
  | `perm.${string}.denied`
  /** An OAuth client's sign-ins (code exchanges), kept per hour (src/provider/clients.ts). */
  | `oauth.signin.${string}`;

/** The counters also kept per hour, by their name in a timeline bucket. */
export const HOURLY_COUNTERS = {
  'auth.loginSucceeded': 'loginSucceeded',
  'auth.loginFailed': 'loginFailed',
  'access.allowed': 'allowed',
  'access.denied': 'denied',
  'requests.rateLimited': 'rateLimited',
} as const satisfies Partial<Record<CounterName, string>>;

const HOURLY = new Set<string>(Object.keys(HOURLY_COUNTERS));
/** Counters of this prefix are kept per hour too (one per OAuth client). */
const HOURLY_PREFIX = 'oauth.signin.';

export const HOUR_MS = 3_600_000;
/** Hours of buckets kept: the longest timeline GET /admin/stats/timeline shows. */
export const TIMELINE_HOURS = 168;

/** The start of the hour (UTC) that `ms` falls in. */
export const hourOf = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;

function countsOf(hourly: Map<number, Map<string, number>>, hour: number): Map<string, number> {
  let counts = hourly.get(hour);
  if (!counts) {
    counts = new Map();
    hourly.set(hour, counts);
  }
  return counts;
}

export class StatsCounters {
  private deltas = new Map<string, number>();
  /** Hour start (ms) -> counter -> delta. */
  private hourly = new Map<number, Map<string, number>>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** The hour of the last pruning of stats_hourly by this instance. */
  private prunedHour: number | undefined;
  private readonly clock: () => number;
  private readonly flushMs: number;

  constructor(
    /** svc.tx: each batch is one transaction, retried on 40001. */
    private readonly tx: TxRunner,
    private readonly logger: Logger,
    opts: { clock?: () => number; flushMs?: number } = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.flushMs = opts.flushMs ?? 1_000;
  }

  add(name: CounterName, n = 1): void {
    this.deltas.set(name, (this.deltas.get(name) ?? 0) + n);
    if (HOURLY.has(name) || name.startsWith(HOURLY_PREFIX)) {
      const counts = countsOf(this.hourly, hourOf(this.clock()));
      counts.set(name, (counts.get(name) ?? 0) + n);
    }
    this.schedule();
  }

  /** Writes what was added so far, waiting for a write in progress first (it may predate the latest adds). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.deltas.size === 0 && this.hourly.size === 0) return;
    this.flushing = this.write().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Write what was added so far (after the write in progress, if any). */
  runOnce(): Promise<void> {
    return this.flush();
  }

  /**
   * Resolves once nothing is left to write or being written. While the
   * database refuses the writes it keeps trying, every 200 ms.
   */
  async idle(): Promise<void> {
    while (this.flushing || this.deltas.size > 0 || this.hourly.size > 0) {
      await this.flush();
      if (this.deltas.size > 0 || this.hourly.size > 0) await new Promise((r) => setTimeout(r, 200));
    }
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs);
  }

  private async write(): Promise<void> {
    const batch = this.deltas;
    const hourlyBatch = this.hourly;
    this.deltas = new Map();
    this.hourly = new Map();
    const rows = [...batch].map(([name, value]) => ({ name, value }));
    const hourlyRows = [...hourlyBatch].flatMap(([hour, counts]) =>
      [...counts].map(([name, value]) => ({ hour: new Date(hour), name, value })),
    );
    try {
      await this.tx(async (tx) => {
        if (rows.length > 0) {
          await tx
            .insert(statsCounters)
            .values(rows)
            .onConflictDoUpdate({ target: statsCounters.name, set: { value: sql`${statsCounters.value} + excluded.value` } });
        }
        if (hourlyRows.length > 0) {
          await tx
            .insert(statsHourly)
            .values(hourlyRows)
            .onConflictDoUpdate({
              target: [statsHourly.hour, statsHourly.name],
              set: { value: sql`${statsHourly.value} + excluded.value` },
            });
        }
      });
    } catch (err) {
      for (const [k, v] of batch) this.deltas.set(k, (this.deltas.get(k) ?? 0) + v);
      for (const [hour, counts] of hourlyBatch) {
        const into = countsOf(this.hourly, hour);
        for (const [k, v] of counts) into.set(k, (into.get(k) ?? 0) + v);
      }
      this.logger.warn({ err }, 'stats flush failed; will retry');
      this.schedule();
      return;
    }
    await this.pruneHourly();
  }

  /**
   * Once an hour per instance: drop the buckets older than the longest
   * timeline. Its own statement, after the upsert, so that it never makes a
   * batch conflict (and retry) with another instance's.
   */
  private async pruneHourly(): Promise<void> {
    const hour = hourOf(this.clock());
    if (this.prunedHour === hour) return;
    this.prunedHour = hour;
    const cutoff = new Date(hour - (TIMELINE_HOURS - 1) * HOUR_MS);
    try {
      await this.tx((tx) => tx.delete(statsHourly).where(lt(statsHourly.hour, cutoff)));
    } catch (err) {
      this.prunedHour = undefined;
      this.logger.warn({ err }, 'pruning hourly stats failed; will retry with the next flush');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
