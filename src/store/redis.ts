// Redis-backed Store shared by every instance. While Redis is unreachable it
// degrades instead of failing: reads miss (callers fall back to the database,
// the source of truth for sessions and roles), counters move to a per-instance
// MemoryStore, and writes are dropped. Because dropped writes may leave stale
// cache entries behind (a session revoked during the outage), nothing is read
// from Redis again until the cached session and role keys have been cleared.
import { Redis } from 'ioredis';
import { MemoryStore } from './memory.js';
import type { BatchRequest, BatchResult, Store, WindowCount } from './store.js';
import { keys } from './store.js';

const HIT_SCRIPT = `
local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return {c, t}`;

type RedisWithHit = Redis & {
  hitWindow(key: string, windowMs: number): Promise<[number, number]>;
};

export type RedisStoreOptions = {
  url: string;
  /** Prefix of every key (tests use one per run). */
  prefix?: string;
  onDegraded?: (operation: string, err: unknown) => void;
  onRecovered?: () => void;
};

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly redis: RedisWithHit;
  private readonly local = new MemoryStore();
  private readonly prefix: string;
  private droppedWrites = false;
  private healing: Promise<boolean> | undefined;
  private closed = false;

  constructor(private readonly opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'auth:';
    this.redis = new Redis(opts.url, {
      keyPrefix: this.prefix,
      // Fail fast while disconnected instead of queueing: callers fall back.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: 1_000,
      retryStrategy: (times) => Math.min(100 * times, 1_000),
      lazyConnect: false,
    }) as RedisWithHit;
    this.redis.defineCommand('hitWindow', { numberOfKeys: 1, lua: HIT_SCRIPT });
    // ioredis emits 'error' on every failed reconnect; the degrade callbacks log it.
    this.redis.on('error', () => {});
    this.redis.on('ready', () => {
      if (this.droppedWrites) void this.heal();
    });
  }

  /** Resolves once the first connection is ready (or rejects after the timeout). */
  async ready(timeoutMs = 5_000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('redis did not become ready')), timeoutMs);
      this.redis.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private degraded(op: string, err: unknown): void {
    this.opts.onDegraded?.(op, err);
  }

  /** True when Redis can be read again: no dropped writes, or their stale keys cleared. */
  private heal(): Promise<boolean> {
    if (!this.droppedWrites) return Promise.resolve(true);
    this.healing ??= this.clearCaches().finally(() => {
      this.healing = undefined;
    });
    return this.healing;
  }

  private async clearCaches(): Promise<boolean> {
    try {
      for (const pattern of [keys.session('*'), keys.userRoles('*'), keys.userProfile('*')]) {
        let cursor = '0';
        do {
          // SCAN patterns are not prefixed by ioredis: add the prefix, strip it to delete.
          const [next, found] = await this.redis.scan(cursor, 'MATCH', this.prefix + pattern, 'COUNT', 500);
          cursor = next;
          if (found.length) await this.redis.del(...found.map((k) => k.slice(this.prefix.length)));
        } while (cursor !== '0');
      }
      await this.redis.incr(keys.rolesVersion);
      this.droppedWrites = false;
      this.opts.onRecovered?.();
      return true;
    } catch (err) {
      this.degraded('clearCaches', err);
      return false;
    }
  }

  async batch(req: BatchRequest): Promise<BatchResult> {
    try {
      if (!(await this.heal())) throw new Error('stale cache not cleared yet');
      const p = this.redis.pipeline();
      for (const k of req.gets) p.get(k);
      if (req.hit) (p as unknown as RedisWithHit).hitWindow(req.hit.key, req.hit.windowMs);
      const out = await p.exec();
      if (!out) throw new Error('pipeline aborted');
      for (const [err] of out) if (err) throw err;
      const values = out.slice(0, req.gets.length).map(([, v]) => (v as string | null) ?? null);
      if (!req.hit) return { values };
      const [count, resetMs] = out[req.gets.length]![1] as [number, number];
      return { values, hit: { count, resetMs } };
    } catch (err) {
      this.degraded('batch', err);
      const values = req.gets.map(() => null);
      return req.hit ? { values, hit: await this.local.hit(req.hit.key, req.hit.windowMs) } : { values };
    }
  }

  async get(key: string): Promise<string | null> {
    try {
      if (!(await this.heal())) return null;
      return await this.redis.get(key);
    } catch (err) {
      this.degraded('get', err);
      return null;
    }
  }

  private async write<T>(op: string, fallback: T, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.droppedWrites = true;
      this.degraded(op, err);
      return fallback;
    }
  }

  set(key: string, value: string, opts: { ttlMs?: number; nx?: boolean } = {}): Promise<boolean> {
    return this.write('set', false, async () => {
      const r =
        opts.ttlMs && opts.nx
          ? await this.redis.set(key, value, 'PX', opts.ttlMs, 'NX')
          : opts.ttlMs
            ? await this.redis.set(key, value, 'PX', opts.ttlMs)
            : opts.nx
              ? await this.redis.set(key, value, 'NX')
              : await this.redis.set(key, value);
      return r === 'OK';
    });
  }

  setMany(entries: [string, string][], ttlMs: number): Promise<void> {
    return this.write('setMany', undefined, async () => {
      if (entries.length === 0) return;
      const p = this.redis.pipeline();
      for (const [k, v] of entries) p.set(k, v, 'PX', ttlMs);
      const out = await p.exec();
      for (const [err] of out ?? []) if (err) throw err;
    });
  }

  del(...ks: string[]): Promise<void> {
    return this.write('del', undefined, async () => {
      if (ks.length) await this.redis.del(...ks);
    });
  }

  incr(key: string): Promise<number> {
    return this.write('incr', 0, () => this.redis.incr(key));
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    try {
      const [count, resetMs] = await this.redis.hitWindow(key, windowMs);
      return { count, resetMs };
    } catch (err) {
      this.degraded('hit', err);
      return this.local.hit(key, windowMs);
    }
  }

  async peek(key: string): Promise<WindowCount> {
    try {
      const [v, t] = await Promise.all([this.redis.get(key), this.redis.pttl(key)]);
      return { count: v === null ? 0 : Number(v), resetMs: Math.max(t, 0) };
    } catch (err) {
      this.degraded('peek', err);
      return this.local.peek(key);
    }
  }

  /** Throws when Redis does not answer: /readyz reports it. */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.local.close();
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
