// Rate-limit hits counted in process and added to the shared counter in
// batches. Per key the instance knows the global count as of its last flush
// (`base`), the hits it sent and has no reply for yet (`inflight`) and the
// ones it counted since (`pending`); a request's count is their sum. At most
// `batch` hits of a key are waiting or in flight: the next one is counted in
// Redis at once, with the waiting ones, and waits for the global count. Every `flushMs` the
// pending hits of every key go out (one auto-pipelined write) and the global
// counts come back. So an instance admits at most `batch` requests of one
// client that the others have not seen, and over all instances a client gets
// at most limit + instances × batch requests in one window.
import type { WindowCount } from './store.js';

type Counter = { base: number; inflight: number; pending: number; resetAt: number; windowMs: number };

/** Add `n` hits to a fixed-window counter in Redis (its window starts with the first): the count and time left after. */
export type ApplyHits = (key: string, n: number, windowMs: number) => Promise<WindowCount>;

export class BatchedHits {
  private readonly counters = new Map<string, Counter>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly apply: ApplyHits,
    private readonly opts: { flushMs?: number; now?: () => number; onError?: (err: unknown) => void } = {},
  ) {
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? 100);
    this.timer.unref();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Counted here when the key's window is known and fewer than `batch` hits wait; undefined: count it with `exact`. */
  tryLocal(key: string, batch: number): WindowCount | undefined {
    const c = this.counters.get(key);
    // In flight counts too: an instance never has more than `batch` hits the shared count has not answered for.
    if (c === undefined || c.pending + c.inflight >= batch) return undefined;
    const now = this.now();
    if (now >= c.resetAt) return undefined;
    c.pending++;
    return { count: c.base + c.inflight + c.pending, resetMs: c.resetAt - now };
  }

  /** This hit and the key's waiting ones, counted in Redis now: the global count. */
  async exact(key: string, windowMs: number): Promise<WindowCount> {
    const now = this.now();
    let c = this.counters.get(key);
    // Hits still waiting from a window that has ended are not carried into the next.
    if (c !== undefined && now >= c.resetAt && c.inflight === 0) c = undefined;
    if (c === undefined) {
      c = { base: 0, inflight: 0, pending: 0, resetAt: 0, windowMs };
      this.counters.set(key, c);
    }
    const n = c.pending + 1;
    c.pending = 0;
    return this.send(key, c, n);
  }

  private async send(key: string, c: Counter, n: number): Promise<WindowCount> {
    c.inflight += n;
    try {
      const r = await this.apply(key, n, c.windowMs);
      c.base = r.count;
      c.resetAt = this.now() + r.resetMs;
      return r;
    } finally {
      c.inflight -= n;
    }
  }

  /** Send every key's waiting hits; forget keys whose window has ended. */
  flush(): void {
    const now = this.now();
    for (const [key, c] of this.counters) {
      if (now >= c.resetAt) {
        if (c.inflight === 0) this.counters.delete(key);
        continue;
      }
      if (c.pending === 0) continue;
      const n = c.pending;
      c.pending = 0;
      this.send(key, c, n).catch((err: unknown) => {
        // Not counted in Redis: they wait for the next flush (the window still bounds them).
        c.pending += n;
        this.opts.onError?.(err);
      });
    }
  }

  /** Waiting hits go out now; resolves when their replies are in. */
  async drain(): Promise<void> {
    const pending: Promise<unknown>[] = [];
    for (const [key, c] of this.counters) {
      if (c.pending === 0 || this.now() >= c.resetAt) continue;
      const n = c.pending;
      c.pending = 0;
      pending.push(this.send(key, c, n).catch(() => {}));
    }
    await Promise.all(pending);
  }

  close(): void {
    clearInterval(this.timer);
    this.counters.clear();
  }
}
