// Usage counters for /admin/stats, kept as local deltas and added to the
// stats_counters table in batched upserts, so they survive restarts and add up
// across instances.
import { sql } from 'drizzle-orm';
import type { Db } from '../db/connect.js';
import { statsCounters } from '../db/schema.js';
import { withTx, type TxOptions } from '../db/tx.js';
import type { Logger } from '../lib/logger.js';

export type CounterName =
  | 'auth.loginSucceeded'
  | 'auth.loginFailed'
  | 'auth.refreshed'
  | 'auth.refreshReused'
  | 'access.allowed'
  | 'access.denied'
  | `perm.${string}.allowed`
  | `perm.${string}.denied`;

export class StatsCounters {
  private deltas = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly retries: TxOptions['retries'],
    private readonly flushMs = 1_000,
  ) {}

  add(name: CounterName, n = 1): void {
    this.deltas.set(name, (this.deltas.get(name) ?? 0) + n);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs);
  }

  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.deltas.size === 0) return;
    const batch = this.deltas;
    this.deltas = new Map();
    const rows = [...batch].map(([name, value]) => ({ name, value }));
    try {
      await withTx(
        this.db,
        async (tx) => {
          await tx
            .insert(statsCounters)
            .values(rows)
            .onConflictDoUpdate({ target: statsCounters.name, set: { value: sql`${statsCounters.value} + excluded.value` } });
        },
        { retries: this.retries },
      );
    } catch (err) {
      for (const [k, v] of batch) this.deltas.set(k, (this.deltas.get(k) ?? 0) + v);
      this.logger.warn({ err }, 'stats flush failed; will retry');
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.flushMs);
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
