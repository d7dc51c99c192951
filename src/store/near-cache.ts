// In-process copies of store values (session liveness, roles, profiles, the
// roles version and the features' named versions), kept true by Redis invalidations (see
// invalidation.ts). A read that misses leaves a placeholder; an invalidation,
// a local write or a flush removes entries and placeholders alike, so a value
// fetched while its key changed is never installed: only the read whose
// placeholder is still in place when its reply arrives fills the entry.

/** A read in flight for one key: filled only if still in place on reply. */
export type Pending = { readonly pending: true };
type Filled = { readonly value: string | null; readonly until: number };
type Slot = Filled | Pending;

export type NearCacheOptions = {
  /** Entries kept at most (the oldest go first). */
  maxEntries?: number;
  /** Longest an entry is served before it is read again, invalidated or not (key expiry in Redis sends no message until the key is gone). */
  maxAgeMs?: number;
  now?: () => number;
};

export class NearCache {
  private readonly slots = new Map<string, Slot>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(opts: NearCacheOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.maxAgeMs = opts.maxAgeMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.slots.size;
  }

  /** The cached value (null: the key is known to be missing), or undefined on a miss. */
  get(key: string): string | null | undefined {
    const s = this.slots.get(key);
    if (s === undefined || 'pending' in s) return undefined;
    if (s.until <= this.now()) {
      this.slots.delete(key);
      return undefined;
    }
    return s.value;
  }

  /** Before reading `key` from Redis: the placeholder to fill when the reply comes. */
  begin(key: string): Pending {
    const s = this.slots.get(key);
    if (s !== undefined && 'pending' in s) return s;
    const p: Pending = { pending: true };
    this.slots.delete(key);
    this.slots.set(key, p);
    if (this.slots.size > this.maxEntries) {
      const oldest = this.slots.keys().next().value;
      if (oldest !== undefined && oldest !== key) this.slots.delete(oldest);
    }
    return p;
  }

  /** The reply of a read begun with `begin`: installed only if nothing changed the key meanwhile. */
  fill(key: string, p: Pending, value: string | null): void {
    if (this.slots.get(key) === p) this.slots.set(key, { value, until: this.now() + this.maxAgeMs });
  }

  drop(key: string): void {
    this.slots.delete(key);
  }

  clear(): void {
    this.slots.clear();
  }
}
