// The event outbox. A service writes its events in the transaction of the
// change (svc.tx's `emit`), so they exist exactly when the change does. After
// the commit the writer hands them to the relays at once (the fast path): the
// store relay (store-relay.ts: revocations, roles, the roles version, cached
// profiles) and the mail relay (mail-relay.ts: wakes the mail sender), and
// marks them relayed. When it could not (its Redis is unreachable: a
// partition or an outage; or it stopped before), they stay unrelayed, and the
// relay on every instance takes them up after a short grace: it claims them
// with one conditional UPDATE (a lease in claimed_until; no advisory locks, no
// SKIP LOCKED, so CockroachDB and PostgreSQL both accept it), applies them
// through its own store and mail sender, and marks them relayed. Relaying
// twice is harmless: every store write is a tombstone, a version, or what the
// database holds now, and a woken sender only looks for due mail.
// Times in the table are the database's (now()), so instances agree on them
// and a test's frozen clock does not stop the relay.
import { randomUUID } from 'node:crypto';
import { inArray, sql } from 'drizzle-orm';
import { eventOutbox } from '../db/schema.js';
import { rowsOf } from '../db/rows.js';
import { retrying, withTx, type Tx, type TxOptions } from '../db/tx.js';
import type { Logger } from '../lib/logger.js';
import { KNOWN, parseEvent, storedForm, type DomainEvent } from './events.js';
import { applyToMail } from './mail-relay.js';
import { applyToStore, type StoreRelayDeps } from './store-relay.js';

/** Write events in the current transaction; they are published after its commit. */
export type Emit = (...events: DomainEvent[]) => Promise<void>;

/**
 * A feature's own store writes for events (a version of data it keeps in
 * process, say). Runs beside the store relay's writes, and again when the relay
 * replays events, so it must be safe to repeat; a throw counts as a failed write.
 */
export type EventReaction = (events: readonly DomainEvent[]) => Promise<void>;

/** A state change's transaction: SERIALIZABLE, retried on 40001 (withTx), with `emit` for its events. */
export type Transact = <T>(fn: (tx: Tx, emit: Emit) => Promise<T>) => Promise<T>;

export type EventRelayOptions = {
  /** The relay looks for unrelayed events every pollMs to 2 × pollMs (jittered, so instances do not keep meeting). */
  pollMs?: number;
  /** Events younger than this are left to their writer's fast path. */
  graceMs?: number;
  /** How long a claim lasts: longer than one publish can take. */
  claimMs?: number;
  batchSize?: number;
  /** Relayed events are deleted after this. */
  keepMs?: number;
};

type Claimed = { id: string; type: string; payload: string };

/**
 * Write events in a transaction, to be relayed. Start-up code that has no
 * services (the bootstrap admin) calls it directly: the relay publishes its
 * events after the grace.
 */
export async function writeEvents(tx: Tx, events: readonly DomainEvent[]): Promise<{ id: string; event: DomainEvent }[]> {
  if (events.length === 0) return [];
  const rows = events.map((event) => ({ id: randomUUID(), event }));
  await tx.insert(eventOutbox).values(rows.map((r) => ({ id: r.id, type: r.event.type, payload: JSON.stringify(storedForm(r.event)) })));
  return rows;
}

const ms = (n: number) => sql`(${Math.round(n)}::int * interval '1 millisecond')`;

export class EventOutbox {
  private readonly o: Required<EventRelayOptions>;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private started = false;
  private stopped = false;
  private lastPrune = 0;
  private lastProblemLog = 0;
  private failing = false;
  private readonly reactions: EventReaction[] = [];

  constructor(
    private readonly deps: StoreRelayDeps & { mail: { wake(): void }; retries: TxOptions['retries']; logger: Logger },
    options: EventRelayOptions = {},
  ) {
    this.o = {
      // An in-process store never drops a write: the relay only prunes there.
      pollMs: options.pollMs ?? (deps.store.kind === 'memory' ? 5_000 : 250),
      graceMs: options.graceMs ?? 500,
      claimMs: options.claimMs ?? 10_000,
      batchSize: options.batchSize ?? 100,
      keepMs: options.keepMs ?? 3600_000,
    };
  }

  /**
   * withTx, with `emit` for the change's events: written in the transaction
   * (an attempt that is retried forgets its own), relayed after the commit.
   * Services call it as `svc.tx`.
   */
  async tx<T>(fn: (tx: Tx, emit: Emit) => Promise<T>): Promise<T> {
    let pending: { id: string; event: DomainEvent }[] = [];
    const out = await withTx(
      this.deps.db,
      async (tx) => {
        pending = [];
        const attempt = pending;
        return fn(tx, async (...events) => {
          attempt.push(...(await writeEvents(tx, events)));
        });
      },
      { retries: this.deps.retries },
    );
    if (pending.length) await this.publishNow(pending);
    return out;
  }

  /** A feature reacts to events with its own store writes (see EventReaction). */
  react(reaction: EventReaction): void {
    this.reactions.push(reaction);
  }

  /** The store relay's writes and the features' reactions; false when any of them failed. */
  private async apply(events: readonly DomainEvent[], from: 'event' | 'database'): Promise<boolean> {
    const before = this.deps.store.failedWrites;
    let thrown = false;
    applyToMail(this.deps.mail, events);
    await Promise.all([
      applyToStore(this.deps, events, from),
      ...this.reactions.map((react) =>
        react(events).catch((err: unknown) => {
          thrown = true;
          this.problem(err, 'event outbox: a reaction to events failed; the relay runs it again');
        }),
      ),
    ]);
    return !thrown && this.deps.store.failedWrites === before;
  }

  /** The fast path: publish from the events, and mark them relayed if every store write landed. */
  private async publishNow(pending: { id: string; event: DomainEvent }[]): Promise<void> {
    const ok = await this.apply(
      pending.map((p) => p.event),
      'event',
    );
    // A write was dropped (this one's, or another's meanwhile): the relay publishes them again.
    if (!ok) return;
    try {
      await this.markRelayed(pending.map((p) => p.id));
    } catch (err) {
      this.problem(err, 'event outbox: could not mark events relayed; the relay publishes them again');
    }
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    // After a failed publish this instance's store is likely cut off: leave the events to the others for a while.
    const base = this.failing ? this.o.pollMs * 4 : this.o.pollMs;
    this.timer = setTimeout(
      () => {
        void this.runOnce().finally(() => this.schedule());
      },
      base + Math.random() * base,
    );
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** One relay cycle (after the one in progress, if any); resolves to the number of events it relayed. */
  runOnce(): Promise<number> {
    const next = this.queue.then(() => this.cycle());
    this.queue = next.catch(() => {});
    return next;
  }

  /**
   * Resolves once no cycle is in flight and a cycle finds nothing to relay:
   * it relays what is due itself. Events younger than graceMs are their
   * writer's, not due yet.
   */
  async idle(): Promise<void> {
    while ((await this.runOnce()) > 0);
  }

  /** Stop polling and wait for the cycle in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.queue;
  }

  private async cycle(): Promise<number> {
    if (this.stopped) return 0;
    try {
      const claimed = await this.claim();
      let relayed = 0;
      if (claimed.length) {
        const events = claimed.map((c) => parseEvent(c.type, c.payload));
        this.failing = !(await this.apply(
          events.filter((e): e is DomainEvent => e !== null),
          'database',
        ));
        if (this.failing) {
          await this.release(claimed.map((c) => c.id));
        } else {
          await this.markRelayed(claimed.map((c) => c.id));
          relayed = claimed.length;
          this.deps.logger.info({ events: relayed }, 'event outbox: relayed events their writer could not publish');
        }
      }
      await this.pruneNow();
      return relayed;
    } catch (err) {
      this.problem(err, 'event outbox: could not read or update pending events; retrying');
      return 0;
    }
  }

  private async claim(): Promise<Claimed[]> {
    const free = sql`${eventOutbox.relayedAt} IS NULL AND (${eventOutbox.claimedUntil} IS NULL OR ${eventOutbox.claimedUntil} < now())`;
    // The outer condition repeats the inner one: under SERIALIZABLE the loser of a race retries and finds nothing.
    const result = await retrying(
      () =>
        this.deps.db.execute(sql`
          UPDATE ${eventOutbox} SET claimed_until = now() + ${ms(this.o.claimMs)}
          WHERE ${eventOutbox.id} IN (
            SELECT ${eventOutbox.id} FROM ${eventOutbox}
            WHERE ${free} AND ${eventOutbox.createdAt} < now() - ${ms(this.o.graceMs)} AND ${inArray(eventOutbox.type, KNOWN)}
            ORDER BY ${eventOutbox.createdAt}
            LIMIT ${this.o.batchSize}
          ) AND ${free}
          RETURNING id, type, payload`),
      { retries: this.deps.retries },
    );
    return rowsOf<Claimed>(result);
  }

  private async markRelayed(ids: string[]): Promise<void> {
    await retrying(
      () => this.deps.db.update(eventOutbox).set({ relayedAt: sql`now()`, claimedUntil: null }).where(inArray(eventOutbox.id, ids)),
      { retries: this.deps.retries },
    );
  }

  private async release(ids: string[]): Promise<void> {
    await retrying(() => this.deps.db.update(eventOutbox).set({ claimedUntil: null }).where(inArray(eventOutbox.id, ids)), {
      retries: this.deps.retries,
    });
  }

  private async pruneNow(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    await retrying(
      () =>
        this.deps.db.execute(sql`
          DELETE FROM ${eventOutbox} WHERE ${eventOutbox.id} IN (
            SELECT ${eventOutbox.id} FROM ${eventOutbox} WHERE ${eventOutbox.relayedAt} < now() - ${ms(this.o.keepMs)} LIMIT 1000
          )`),
      { retries: this.deps.retries },
    );
  }

  private problem(err: unknown, message: string): void {
    const now = Date.now();
    if (now - this.lastProblemLog < 10_000) return;
    this.lastProblemLog = now;
    this.deps.logger.warn({ err }, message);
  }
}
