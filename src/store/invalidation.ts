// Redis server-assisted client-side caching, broadcast mode: a control
// connection turns tracking on (CLIENT TRACKING ON BCAST PREFIX …) with its
// invalidation messages redirected to a subscribed connection, so every write
// to a tracked key, by any instance or by hand, reaches this instance as the
// key's name. The channel is trusted only while it is proven: the control
// connection writes a heartbeat key every `heartbeatMs`, and the channel is
// live only while the invalidation of a heartbeat sent less than
// `staleAfterMs` ago has come back through it. A closed connection, a
// tracking state lost with a reconnect or a stalled subscriber all end in the
// same place: not live, caches flushed and bypassed, reconnected with backoff.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

export type InvalidationOptions = {
  url: string;
  /** The store's key prefix: invalidations name full keys. */
  prefix: string;
  /** The tracked key prefixes, after the store prefix (they must not overlap). */
  tracked: readonly string[];
  heartbeatMs?: number;
  staleAfterMs?: number;
  /** Keys (without the store prefix) that changed; null: every key (FLUSHDB, lost channel). */
  onInvalidate(keys: string[] | null): void;
  /** The channel became live or stopped being live (logged and exported by the caller). */
  onState?(live: boolean, reason: string): void;
  now?: () => number;
};

const CHANNEL = '__redis__:invalidate';

export class InvalidationChannel {
  private sub: Redis | undefined;
  private ctl: Redis | undefined;
  /** Tracking is on for the current connections (not yet proven by a heartbeat). */
  private tracking = false;
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private readonly sent = new Map<number, number>();
  private seq = 0;
  private live = false;
  private closed = false;
  private backoffMs = 100;
  private retry: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly heartbeatMs: number;
  private readonly staleAfterMs: number;
  private readonly now: () => number;
  /** This instance's heartbeat keys: `<prefix>hb:<id>:<seq>`. */
  private readonly beatPrefix: string;
  private readonly anyBeatPrefix: string;
  /** The connections' client name base (CLIENT LIST shows `<name>:sub` and `<name>:ctl`). */
  readonly name: string;

  constructor(private readonly opts: InvalidationOptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 100;
    this.staleAfterMs = opts.staleAfterMs ?? 350;
    this.now = opts.now ?? Date.now;
    this.anyBeatPrefix = `${opts.prefix}hb:`;
    const id = randomUUID();
    this.name = `auth-inv-${id}`;
    this.beatPrefix = `${this.anyBeatPrefix}${id}:`;
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
    void this.connect();
  }

  /**
   * Whether cached values may be served now. Checked on every read; the
   * first check that finds the channel unproven flushes the caches.
   */
  isLive(): boolean {
    const ok = this.tracking && this.now() - this.confirmedAt < this.staleAfterMs;
    if (ok !== this.live) this.setLive(ok, ok ? 'heartbeat confirmed' : 'heartbeat not confirmed in time');
    return ok;
  }

  private setLive(ok: boolean, reason: string): void {
    this.live = ok;
    // Both ways: nothing cached before a gap may be served after it.
    this.opts.onInvalidate(null);
    this.opts.onState?.(ok, reason);
  }

  private connection(role: 'sub' | 'ctl'): Redis {
    const r = new Redis(this.opts.url, {
      connectionName: `${this.name}:${role}`,
      lazyConnect: true,
      // Reconnecting is done here, with both connections anew: tracking
      // state and the redirect target do not survive a reconnect.
      retryStrategy: () => null,
      // RESP2: redirected invalidations arrive as messages on __redis__:invalidate
      // (ioredis drops RESP3 "invalidate" pushes).
      protocol: 2,
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2_000,
      commandTimeout: 1_000,
    });
    r.on('error', () => {});
    return r;
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const sub = this.connection('sub');
    const ctl = this.connection('ctl');
    this.sub = sub;
    this.ctl = ctl;
    sub.on('close', () => this.lost(sub, 'invalidation connection closed'));
    ctl.on('close', () => this.lost(ctl, 'tracking connection closed'));
    try {
      await Promise.all([sub.connect(), ctl.connect()]);
      const id = await sub.client('ID');
      sub.on('messageBuffer', (_channel: Buffer, message: unknown) => this.message(message));
      await sub.subscribe(CHANNEL);
      const prefixes = this.opts.tracked.flatMap((p) => ['PREFIX', this.opts.prefix + p]);
      await ctl.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', ...prefixes, 'PREFIX', this.anyBeatPrefix);
      if (this.sub !== sub || this.closed) return;
      this.tracking = true;
      this.backoffMs = 100;
      this.beat();
    } catch (err) {
      this.lost(sub, `could not set up invalidation: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private lost(conn: Redis, reason: string): void {
    if (conn !== this.sub && conn !== this.ctl) return;
    const [sub, ctl] = [this.sub, this.ctl];
    this.sub = undefined;
    this.ctl = undefined;
    this.tracking = false;
    this.sent.clear();
    sub?.disconnect();
    ctl?.disconnect();
    if (this.live) this.setLive(false, reason);
    else this.opts.onInvalidate(null);
    if (this.closed) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.connect(), this.backoffMs);
    this.retry.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, 2_000);
  }

  private beat(): void {
    const ctl = this.ctl;
    if (this.tracking && ctl) {
      const now = this.now();
      const seq = ++this.seq;
      this.sent.set(seq, now);
      for (const [s, at] of this.sent) {
        if (now - at <= this.staleAfterMs * 4) break;
        this.sent.delete(s);
      }
      ctl.set(this.beatPrefix + seq, '1', 'PX', 2_000).catch(() => {});
    }
    this.isLive();
  }

  private message(raw: unknown): void {
    // A flush (FLUSHDB/FLUSHALL) is announced as a nil key list.
    if (raw === null || raw === undefined) {
      this.opts.onInvalidate(null);
      return;
    }
    const list = Array.isArray(raw) ? raw : [raw];
    const keys: string[] = [];
    const prefix = this.opts.prefix;
    for (const item of list) {
      const k = String(item);
      if (k.startsWith(this.anyBeatPrefix)) {
        if (k.startsWith(this.beatPrefix)) this.confirm(Number(k.slice(this.beatPrefix.length)));
      } else if (k.startsWith(prefix)) keys.push(k.slice(prefix.length));
    }
    if (keys.length > 0) this.opts.onInvalidate(keys);
  }

  private confirm(seq: number): void {
    const at = this.sent.get(seq);
    if (at === undefined) return;
    this.sent.delete(seq);
    if (at > this.confirmedAt) this.confirmedAt = at;
    this.isLive();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.retry);
    const conns = [this.sub, this.ctl];
    this.sub = undefined;
    this.ctl = undefined;
    this.tracking = false;
    this.live = false;
    await Promise.all(
      conns.map(async (c) => {
        if (!c) return;
        try {
          await c.quit();
        } catch {
          c.disconnect();
        }
      }),
    );
  }
}
