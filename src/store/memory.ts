// In-process Store for a single instance (embedded mode, unit tests) and the
// per-instance fallback for counters while Redis is unreachable.
import type { BatchRequest, BatchResult, Reservation, Store, WindowCount } from './store.js';

type Entry = { value: string; expiresAt: number | null };

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly failedWrites = 0;
  private readonly map = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    // Expired counters are dropped lazily on read and by this sweep, so memory
    // stays bounded by the number of clients active within a window.
    this.sweeper = setInterval(() => this.sweep(), 10_000);
    this.sweeper.unref();
  }

  private live(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (e && e.expiresAt !== null && e.expiresAt <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, e] of this.map) if (e.expiresAt !== null && e.expiresAt <= t) this.map.delete(k);
  }

  private hitSync(key: string, windowMs: number): WindowCount {
    const t = this.now();
    const e = this.live(key);
    if (!e || e.expiresAt === null) {
      this.map.set(key, { value: '1', expiresAt: t + windowMs });
      return { count: 1, resetMs: windowMs };
    }
    const count = Number(e.value) + 1;
    e.value = String(count);
    return { count, resetMs: e.expiresAt - t };
  }

  async batch(req: BatchRequest): Promise<BatchResult> {
    const values = req.gets.map((k) => this.live(k)?.value ?? null);
    return req.hit ? { values, hit: this.hitSync(req.hit.key, req.hit.windowMs) } : { values };
  }

  async get(key: string): Promise<string | null> {
    return this.live(key)?.value ?? null;
  }

  async take(key: string): Promise<string | null> {
    const v = this.live(key)?.value ?? null;
    this.map.delete(key);
    return v;
  }

  async set(key: string, value: string, opts: { ttlMs?: number; nx?: boolean } = {}): Promise<boolean> {
    if (opts.nx && this.live(key)) return false;
    this.map.set(key, { value, expiresAt: opts.ttlMs ? this.now() + opts.ttlMs : null });
    return true;
  }

  async setMany(entries: [string, string][], ttlMs: number): Promise<void> {
    for (const [k, v] of entries) this.map.set(k, { value: v, expiresAt: this.now() + ttlMs });
  }

  async del(...keys: string[]): Promise<void> {
    for (const k of keys) this.map.delete(k);
  }

  async incr(key: string): Promise<number> {
    const e = this.live(key);
    const next = (e ? Number(e.value) : 0) + 1;
    this.map.set(key, { value: String(next), expiresAt: e?.expiresAt ?? null });
    return next;
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    return this.hitSync(key, windowMs);
  }

  private peekSync(key: string): WindowCount {
    const e = this.live(key);
    if (!e) return { count: 0, resetMs: 0 };
    return { count: Number(e.value), resetMs: e.expiresAt === null ? 0 : e.expiresAt - this.now() };
  }

  async peek(key: string): Promise<WindowCount> {
    return this.peekSync(key);
  }

  async reserve(counters: { key: string; limit: number }[], windowMs: number): Promise<Reservation> {
    // Synchronous from the first read to the last write: atomic on one event loop.
    const now = this.peekSync.bind(this);
    const before = counters.map((c) => now(c.key));
    if (before.some((w, i) => w.count >= counters[i]!.limit)) return { ok: false, counts: before };
    return { ok: true, counts: counters.map((c) => this.hitSync(c.key, windowMs)) };
  }

  async release(key: string): Promise<void> {
    const e = this.live(key);
    if (e && Number(e.value) > 0) e.value = String(Number(e.value) - 1);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.map.clear();
  }
}
