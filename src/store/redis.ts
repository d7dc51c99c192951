// Redis-backed Store shared by every instance. While Redis is unreachable it
// degrades instead of failing: reads miss (callers fall back to the database,
// the source of truth for sessions and roles), counters move to a per-instance
// MemoryStore, and writes are dropped. Because dropped writes may leave stale
// cache entries behind (a session revoked during the outage), nothing is read
// from Redis again until the cached session and role keys have been cleared.
//
// In steady state it makes no round trip at all: session liveness, roles,
// profiles and the versions are served from an in-process near-cache that
// Redis invalidation messages keep true (invalidation.ts; bypassed whenever
// that channel is not proven live), and rate-limit hits are counted in
// process and flushed in batches (batched-hits.ts).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { BatchedHits } from './batched-hits.js';
import { InvalidationChannel } from './invalidation.js';
import { MemoryStore } from './memory.js';
import { NearCache } from './near-cache.js';
import type { BatchRequest, BatchResult, Reservation, Store, WindowCount } from './store.js';
import { isNearCached, NEAR_CACHED_PREFIXES, storeKeys } from './store.js';

// A whole request's store work as one command: GET every key but the last,
// then, when ARGV[1] is a window length, a fixed-window hit on the last key.
// One command instead of a pipeline of five: ioredis spends its time per
// command (objects, promises, reply parsing), and this is on every request.
// (false becomes a nil reply, so missing keys keep their place in the array.)
// The keys live in different hash slots: one Redis server (or a primary with
// replicas) as REDIS_URL names, not Redis Cluster.
const BATCH_SCRIPT = `
local out = {}
local n = #KEYS
if ARGV[1] ~= '' then n = n - 1 end
for i = 1, n do
  out[i] = redis.call('GET', KEYS[i]) or false
end
if ARGV[1] ~= '' then
  local k = KEYS[n + 1]
  local c = redis.call('INCR', k)
  local t = redis.call('PTTL', k)
  if t < 0 then
    redis.call('PEXPIRE', k, ARGV[1])
    t = tonumber(ARGV[1])
  end
  out[n + 1] = c
  out[n + 2] = t
end
return out`;

// Reserve one attempt on every counter in KEYS, or on none: refused (first
// reply 0) when any counter has reached its limit (ARGV[i + 1]); ARGV[1] is the
// window of counters that start. Then count and remaining time per key.
const RESERVE_SCRIPT = `
local n = #KEYS
local ok = 1
for i = 1, n do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i + 1]) then ok = 0 end
end
local out = {ok}
for i = 1, n do
  local c
  if ok == 1 then c = redis.call('INCR', KEYS[i]) else c = tonumber(redis.call('GET', KEYS[i]) or '0') end
  local t = redis.call('PTTL', KEYS[i])
  if ok == 1 and t < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    t = tonumber(ARGV[1])
  end
  if t < 0 then t = 0 end
  out[#out + 1] = c
  out[#out + 1] = t
end
return out`;

// A fixed-window hit of ARGV[1] counts at once (a batch of rate-limit hits).
const HIT_N_SCRIPT = `
local c = redis.call('INCRBY', KEYS[1], ARGV[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  t = tonumber(ARGV[2])
end
return {c, t}`;

// One count back, never below zero; DECR keeps the window's expiry.
const RELEASE_SCRIPT = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
return 0`;

type RedisWithHit = Redis & {
  batchRead(numKeys: number, ...keysThenWindow: (string | number)[]): Promise<(string | number | null)[]>;
  reserveAll(numKeys: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
  releaseOne(key: string): Promise<number>;
  hitN(key: string, n: number, windowMs: number): Promise<[number, number]>;
};

export type NearCacheSettings = {
  /** Heartbeat through the invalidation channel (ms). */
  heartbeatMs?: number;
  /** The channel is trusted while a heartbeat sent this recently has come back (ms). */
  staleAfterMs?: number;
  maxEntries?: number;
  maxAgeMs?: number;
  /** Rate-limit hits counted in process go to Redis at least this often (ms). */
  flushMs?: number;
};

export type RedisStoreOptions = {
  url: string;
  /** Prefix of every key (tests use one per run). */
  prefix?: string;
  onDegraded?: (operation: string, err: unknown) => void;
  onRecovered?: () => void;
  /**
   * Serve session, role, profile and version reads from memory while Redis
   * invalidation is proven live, and count rate-limit hits in process in
   * batches (default on; false: every request reads Redis, as REDIS_NEAR_CACHE=off).
   */
  nearCache?: boolean | NearCacheSettings;
  /** The near-cache went live or was flushed and bypassed, and why. */
  onNearCache?: (live: boolean, reason: string) => void;
};

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly redis: RedisWithHit;
  private readonly local = new MemoryStore();
  private readonly prefix: string;
  private droppedWrites = false;
  failedWrites = 0;
  private healing: Promise<boolean> | undefined;
  private closed = false;
  private readonly cache: NearCache | undefined;
  private readonly channel: InvalidationChannel | undefined;
  private readonly hits: BatchedHits | undefined;

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
      // Commands issued while the event loop handles one batch of I/O go out
      // in one write: under load, many requests share a socket write (a
      // syscall costs as much as the rest of the command here, profiled).
      enableAutoPipelining: true,
    }) as RedisWithHit;
    this.redis.defineCommand('batchRead', { lua: BATCH_SCRIPT });
    this.redis.defineCommand('reserveAll', { lua: RESERVE_SCRIPT });
    this.redis.defineCommand('releaseOne', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    this.redis.defineCommand('hitN', { numberOfKeys: 1, lua: HIT_N_SCRIPT });
    // ioredis emits 'error' on every failed reconnect; the degrade callbacks log it.
    this.redis.on('error', () => {});
    this.redis.on('ready', () => {
      if (this.droppedWrites) void this.heal();
    });
    if (opts.nearCache !== false) {
      const settings = opts.nearCache === true || opts.nearCache === undefined ? {} : opts.nearCache;
      const cache = new NearCache(settings);
      this.cache = cache;
      this.channel = new InvalidationChannel({
        url: opts.url,
        prefix: this.prefix,
        tracked: NEAR_CACHED_PREFIXES,
        ...(settings.heartbeatMs ? { heartbeatMs: settings.heartbeatMs } : {}),
        ...(settings.staleAfterMs ? { staleAfterMs: settings.staleAfterMs } : {}),
        onInvalidate: (keys) => {
          if (keys === null) cache.clear();
          else for (const k of keys) cache.drop(k);
        },
        ...(opts.onNearCache ? { onState: opts.onNearCache } : {}),
      });
      this.hits = new BatchedHits(
        async (key, n, windowMs) => {
          const [count, resetMs] = await this.redis.hitN(key, n, windowMs);
          return { count: Number(count), resetMs: Number(resetMs) };
        },
        { ...(settings.flushMs ? { flushMs: settings.flushMs } : {}), onError: (err) => this.degraded('flushHits', err) },
      );
    }
  }

  /** Store calls on the request path (batch, get) answered from memory alone, and those that sent a command. */
  readonly nearCacheStats = { fromMemory: 0, fromRedis: 0 };

  /** The invalidation connections' client name base (`<name>:sub`, `<name>:ctl` in CLIENT LIST). */
  get invalidationClientName(): string | undefined {
    return this.channel?.name;
  }

  /** Whether reads are served from memory right now (the invalidation channel is proven live). */
  get nearCacheLive(): boolean {
    return this.usableCache() !== undefined;
  }

  /** The near-cache when it may be used: channel proven live and no dropped writes awaiting repair. */
  private usableCache(): NearCache | undefined {
    if (!this.cache || this.droppedWrites || !this.channel!.isLive()) return undefined;
    return this.cache;
  }

  /** After a write of this instance's (done or failed): its next read of these keys goes to Redis. */
  private forget(keys: readonly string[]): void {
    if (!this.cache) return;
    for (const k of keys) if (isNearCached(k)) this.cache.drop(k);
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
      for (const pattern of [storeKeys.session('*'), storeKeys.userRoles('*'), storeKeys.userProfile('*')]) {
        let cursor = '0';
        do {
          // SCAN patterns are not prefixed by ioredis: add the prefix, strip it to delete.
          const [next, found] = await this.redis.scan(cursor, 'MATCH', this.prefix + pattern, 'COUNT', 500);
          cursor = next;
          if (found.length) await this.redis.del(...found.map((k) => k.slice(this.prefix.length)));
        } while (cursor !== '0');
      }
      // New random versions (never a counter: see storeKeys): every instance
      // reloads roles and whatever the features keep under a named version.
      await this.redis.set(storeKeys.rolesVersion, randomUUID());
      let cursor = '0';
      do {
        const [next, found] = await this.redis.scan(cursor, 'MATCH', this.prefix + storeKeys.version('*'), 'COUNT', 500);
        cursor = next;
        for (const k of found) await this.redis.set(k.slice(this.prefix.length), randomUUID());
      } while (cursor !== '0');
      this.cache?.clear();
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
      if (this.droppedWrites && !(await this.heal())) throw new Error('stale cache not cleared yet');
      const cache = this.usableCache();
      if (cache === undefined && !(this.hits && req.hit?.batch)) {
        this.nearCacheStats.fromRedis++;
        return await this.batchFromRedis(req);
      }
      return await this.batchNear(req, cache);
    } catch (err) {
      this.degraded('batch', err);
      const values = req.gets.map(() => null);
      return req.hit ? { values, hit: await this.local.hit(req.hit.key, req.hit.windowMs) } : { values };
    }
  }

  /** Today's one command: every read and the hit from Redis. */
  private async batchFromRedis(req: BatchRequest): Promise<BatchResult> {
    const n = req.gets.length;
    const out = req.hit
      ? await this.redis.batchRead(n + 1, ...req.gets, req.hit.key, req.hit.windowMs)
      : await this.redis.batchRead(n, ...req.gets, '');
    const values = new Array<string | null>(n);
    for (let i = 0; i < n; i++) values[i] = (out[i] as string | null | undefined) ?? null;
    if (!req.hit) return { values };
    return { values, hit: { count: Number(out[n]), resetMs: Number(out[n + 1]) } };
  }

  /** Reads from the near-cache (when usable), the hit counted in process when it may be; Redis only for the rest. */
  private async batchNear(req: BatchRequest, cache: NearCache | undefined): Promise<BatchResult> {
    const gets = req.gets;
    const values = new Array<string | null>(gets.length);
    const missing: number[] = [];
    for (let i = 0; i < gets.length; i++) {
      const k = gets[i]!;
      const v = cache !== undefined && isNearCached(k) ? cache.get(k) : undefined;
      if (v === undefined) missing.push(i);
      else values[i] = v;
    }
    let hit: WindowCount | undefined;
    let counting: Promise<WindowCount> | undefined;
    if (req.hit) {
      const { key, windowMs, batch } = req.hit;
      hit = batch && this.hits ? this.hits.tryLocal(key, batch) : undefined;
      if (hit === undefined) counting = this.hits ? this.hits.exact(key, windowMs) : this.hitInRedis(key, windowMs);
    }
    if (missing.length > 0 || counting !== undefined) this.nearCacheStats.fromRedis++;
    else this.nearCacheStats.fromMemory++;
    if (missing.length > 0) {
      const keys = missing.map((i) => gets[i]!);
      // Placeholders before the command: an invalidation arriving before its reply removes them.
      const slots = cache !== undefined ? keys.map((k) => (isNearCached(k) ? cache.begin(k) : undefined)) : undefined;
      // Together, so that a failed read never leaves the hit's promise unobserved (and vice versa).
      const [out, counted] = await Promise.all([this.redis.batchRead(keys.length, ...keys, ''), counting]);
      if (counted !== undefined) hit = counted;
      counting = undefined;
      for (let j = 0; j < keys.length; j++) {
        const v = (out[j] as string | null | undefined) ?? null;
        values[missing[j]!] = v;
        const slot = slots?.[j];
        if (slot !== undefined) cache!.fill(keys[j]!, slot, v);
      }
    }
    if (counting !== undefined) hit = await counting;
    return hit !== undefined ? { values, hit } : { values };
  }

  private async hitInRedis(key: string, windowMs: number): Promise<WindowCount> {
    const [count, resetMs] = await this.redis.batchRead(1, key, windowMs);
    return { count: Number(count), resetMs: Number(resetMs) };
  }

  async get(key: string): Promise<string | null> {
    try {
      if (this.droppedWrites && !(await this.heal())) return null;
      const cache = isNearCached(key) ? this.usableCache() : undefined;
      if (cache === undefined) {
        this.nearCacheStats.fromRedis++;
        return await this.redis.get(key);
      }
      const v = cache.get(key);
      if (v !== undefined) {
        this.nearCacheStats.fromMemory++;
        return v;
      }
      this.nearCacheStats.fromRedis++;
      const slot = cache.begin(key);
      const fetched = await this.redis.get(key);
      cache.fill(key, slot, fetched);
      return fetched;
    } catch (err) {
      this.degraded('get', err);
      return null;
    }
  }

  take(key: string): Promise<string | null> {
    // GETDEL (Redis 6.2+); unreachable, nothing can be taken: single-use state fails closed.
    return this.write('take', null, () => this.redis.getdel(key), [key]);
  }

  /**
   * A write, and then (done or failed) this instance's cached copies of its
   * keys dropped: the next request here reads what it wrote, without waiting
   * for the invalidation message (which drops them once more when it comes).
   */
  private async write<T>(op: string, fallback: T, fn: () => Promise<T>, keys: readonly string[]): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.failedWrites++;
      this.droppedWrites = true;
      this.cache?.clear();
      this.degraded(op, err);
      return fallback;
    } finally {
      this.forget(keys);
    }
  }

  set(key: string, value: string, opts: { ttlMs?: number; nx?: boolean } = {}): Promise<boolean> {
    return this.write(
      'set',
      false,
      async () => {
        const r =
          opts.ttlMs && opts.nx
            ? await this.redis.set(key, value, 'PX', opts.ttlMs, 'NX')
            : opts.ttlMs
              ? await this.redis.set(key, value, 'PX', opts.ttlMs)
              : opts.nx
                ? await this.redis.set(key, value, 'NX')
                : await this.redis.set(key, value);
        return r === 'OK';
      },
      [key],
    );
  }

  setMany(entries: [string, string][], ttlMs: number): Promise<void> {
    return this.write(
      'setMany',
      undefined,
      async () => {
        if (entries.length === 0) return;
        const p = this.redis.pipeline();
        for (const [k, v] of entries) p.set(k, v, 'PX', ttlMs);
        const out = await p.exec();
        for (const [err] of out ?? []) if (err) throw err;
      },
      entries.map(([k]) => k),
    );
  }

  del(...ks: string[]): Promise<void> {
    return this.write(
      'del',
      undefined,
      async () => {
        if (ks.length) await this.redis.del(...ks);
      },
      ks,
    );
  }

  incr(key: string): Promise<number> {
    return this.write('incr', 0, () => this.redis.incr(key), [key]);
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    try {
      // The batch script with no reads: just the fixed-window hit.
      const [count, resetMs] = await this.redis.batchRead(1, key, windowMs);
      return { count: Number(count), resetMs: Number(resetMs) };
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

  async reserve(counters: { key: string; limit: number }[], windowMs: number): Promise<Reservation> {
    try {
      const out = await this.redis.reserveAll(counters.length, ...counters.map((c) => c.key), windowMs, ...counters.map((c) => c.limit));
      const counts = counters.map((_, i) => ({ count: Number(out[1 + 2 * i]), resetMs: Number(out[2 + 2 * i]) }));
      return { ok: Number(out[0]) === 1, counts };
    } catch (err) {
      this.degraded('reserve', err);
      return this.local.reserve(counters, windowMs);
    }
  }

  async release(key: string): Promise<void> {
    try {
      await this.redis.releaseOne(key);
    } catch (err) {
      this.degraded('release', err);
      await this.local.release(key);
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
    await this.channel?.close();
    // Hits counted here but not yet in Redis are added before the connection goes.
    await this.hits?.drain();
    this.hits?.close();
    this.cache?.clear();
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
