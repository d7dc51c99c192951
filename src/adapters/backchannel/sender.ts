// The back-channel logout sender: delivers the rows of backchannel_deliveries
// (queued with the end of a session, src/provider/backchannel.ts) to each
// client's backchannelLogoutUri, off the request path. Like the mail outbox
// sender, every instance claims due rows with one conditional UPDATE (a lease:
// claimed_by and claimed_until; no advisory locks), so two instances never post
// one delivery twice while its claim lasts. The logout token is signed at send
// time (it lives 2 minutes) and never stored or logged. Anything but a 2xx
// answer within the timeout is retried with capped exponential backoff; a
// delivery is given up after maxAttempts or once it is older than its expiry.
import { randomUUID } from 'node:crypto';
import { inArray, sql } from 'drizzle-orm';
import type { Db } from '../../db/connect.js';
import { backchannelDeliveries, oauthClients } from '../../db/schema.js';
import { rowsOf } from '../../db/rows.js';
import { retrying, type TxOptions } from '../../db/tx.js';
import type { Logger } from '../../lib/logger.js';
import type { ProviderAlg } from '../../security/key-ring.js';

export type BackchannelOptions = {
  /** How often each instance looks for due deliveries (besides being woken after a commit). */
  pollMs?: number;
  /** How long a claim lasts: longer than one POST can take. */
  claimMs?: number;
  batchSize?: number;
  /** One POST's timeout. */
  timeoutMs?: number;
  /** First retry delay; doubles per attempt up to maxBackoffMs (with jitter). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** A delivery is given up after this many attempts (or past its expires_at). */
  maxAttempts?: number;
  /** Delivered and given-up rows are deleted after this. */
  keepMs?: number;
};

/** What the sender asks the provider to sign. */
export type LogoutTokenRequest = { clientId: string; sessionId: string; userId: string; alg: ProviderAlg };

type Outcomes = { inc(labels: { outcome: 'delivered' | 'retried' | 'given_up' }): void };

type Claimed = { id: string; client_id: string; session_id: string; user_id: string; expires_at: string | Date; attempts: number };

export class BackchannelSender {
  private readonly id = `backchannel-${randomUUID()}`;
  private readonly o: Required<BackchannelOptions>;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastProblemLog = 0;
  private lastPrune = 0;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly deps: {
      clock: () => number;
      retries: TxOptions['retries'];
      outcomes: Outcomes;
      sign: (r: LogoutTokenRequest) => Promise<string>;
    },
    options: BackchannelOptions = {},
  ) {
    this.o = {
      pollMs: options.pollMs ?? 2_000,
      claimMs: options.claimMs ?? 30_000,
      batchSize: options.batchSize ?? 20,
      timeoutMs: options.timeoutMs ?? 5_000,
      baseBackoffMs: options.baseBackoffMs ?? 1_000,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      maxAttempts: options.maxAttempts ?? 120,
      keepMs: options.keepMs ?? 7 * 86_400_000,
    };
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.wake(), this.o.pollMs);
    (this.timer as { unref?: () => void }).unref?.();
    this.wake();
  }

  /** Look for due deliveries now (called after a commit that queued one). */
  wake(): void {
    // Not started: this instance leaves the deliveries to the others.
    if (this.stopped || !this.timer) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.cycle().finally(() => {
      this.running = undefined;
    });
  }

  /** One batch now, after the cycle in progress; resolves to the number of deliveries it claimed (0 when the database failed). */
  async runOnce(): Promise<number> {
    while (this.running) await this.running;
    if (this.stopped) return 0;
    let claimed = 0;
    this.running = this.step()
      .then((n) => {
        claimed = Math.max(0, n);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) this.wake();
      });
    await this.running;
    return claimed;
  }

  /** Resolves once nothing is in flight and nothing is due: it sends what is due itself, batch after batch. */
  async idle(): Promise<void> {
    while ((await this.runOnce()) > 0);
  }

  /** Stop polling and wait for the batch in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  private async cycle(): Promise<void> {
    do {
      this.again = false;
      const n = await this.step();
      if (n < 0) return;
      if (n >= this.o.batchSize) this.again = true;
    } while (this.again && !this.stopped);
  }

  private async step(): Promise<number> {
    try {
      const n = await this.sendDue();
      await this.pruneNow();
      return n;
    } catch (err) {
      const now = Date.now();
      if (now - this.lastProblemLog > 10_000) {
        this.lastProblemLog = now;
        this.logger.warn({ err }, 'back-channel logout: could not read or update pending deliveries; retrying');
      }
      return -1;
    }
  }

  private async sendDue(): Promise<number> {
    const now = new Date(this.deps.clock());
    const until = new Date(now.getTime() + this.o.claimMs);
    const d = backchannelDeliveries;
    const free = sql`${d.deliveredAt} IS NULL AND ${d.failedAt} IS NULL AND (${d.claimedUntil} IS NULL OR ${d.claimedUntil} < ${now.toISOString()}::timestamptz)`;
    // The outer condition repeats the inner one (see the mail outbox): a row another sender claimed meanwhile is skipped.
    const claimed = rowsOf<Claimed>(
      await retrying(
        () =>
          this.db.execute(sql`
            UPDATE ${d}
            SET claimed_by = ${this.id}, claimed_until = ${until.toISOString()}::timestamptz, attempts = ${d.attempts} + 1
            WHERE ${d.id} IN (
              SELECT ${d.id} FROM ${d}
              WHERE ${free} AND ${d.nextAttemptAt} <= ${now.toISOString()}::timestamptz
              ORDER BY ${d.nextAttemptAt}
              LIMIT ${this.o.batchSize}
            ) AND ${free}
            RETURNING id, client_id, session_id, user_id, expires_at, attempts`),
        { retries: this.deps.retries },
      ),
    );
    if (claimed.length === 0) return 0;
    // The client as it is now: its current URI and algorithm.
    const clients = new Map(
      (
        await this.db
          .select({ id: oauthClients.id, uri: oauthClients.backchannelLogoutUri, alg: oauthClients.idTokenSignedResponseAlg })
          .from(oauthClients)
          .where(
            inArray(
              oauthClients.id,
              claimed.map((c) => c.client_id),
            ),
          )
      ).map((c) => [c.id, c]),
    );
    await Promise.all(
      claimed.map(async (row) => {
        if (this.stopped) return this.release(row.id);
        const client = clients.get(row.client_id);
        if (!client?.uri) return this.giveUp(row, 'no backchannel_logout_uri');
        if (new Date(row.expires_at).getTime() <= this.deps.clock()) return this.giveUp(row, 'expired');
        const alg = (['RS256', 'ES256', 'EdDSA'] as const).find((a) => a === client.alg) ?? 'RS256';
        return this.deliver(row, client.uri, alg);
      }),
    );
    return claimed.length;
  }

  private async deliver(row: Claimed, uri: string, alg: ProviderAlg): Promise<void> {
    let reason: string;
    try {
      const token = await this.deps.sign({ clientId: row.client_id, sessionId: row.session_id, userId: row.user_id, alg });
      const res = await fetch(uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ logout_token: token }).toString(),
        // A redirect is not an answer (and would resend the token elsewhere).
        redirect: 'manual',
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      // The body is not needed; reading it frees the connection.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        await this.update(
          row.id,
          sql`delivered_at = ${new Date(this.deps.clock()).toISOString()}::timestamptz, claimed_until = NULL, last_error = NULL`,
        );
        this.deps.outcomes.inc({ outcome: 'delivered' });
        this.logger.info({ deliveryId: row.id, clientId: row.client_id, attempts: row.attempts }, 'back-channel logout delivered');
        return;
      }
      reason = `http ${res.status}`;
    } catch (err) {
      reason = errorCode(err);
    }
    if (row.attempts >= this.o.maxAttempts) return this.giveUp(row, reason);
    await this.retryLater(row, reason);
  }

  private async retryLater(row: Claimed, reason: string): Promise<void> {
    const backoff = Math.min(this.o.maxBackoffMs, this.o.baseBackoffMs * 2 ** Math.min(20, row.attempts - 1));
    const delay = Math.round(backoff * (0.5 + Math.random() / 2));
    await this.update(
      row.id,
      sql`next_attempt_at = ${new Date(this.deps.clock() + delay).toISOString()}::timestamptz, claimed_by = NULL, claimed_until = NULL, last_error = ${reason}`,
    );
    this.deps.outcomes.inc({ outcome: 'retried' });
    this.logger.warn(
      { deliveryId: row.id, clientId: row.client_id, attempts: row.attempts, reason, retryInMs: delay },
      'back-channel logout not delivered yet; will retry',
    );
  }

  private async giveUp(row: Claimed, reason: string): Promise<void> {
    await this.update(
      row.id,
      sql`failed_at = ${new Date(this.deps.clock()).toISOString()}::timestamptz, claimed_until = NULL, last_error = ${reason}`,
    );
    this.deps.outcomes.inc({ outcome: 'given_up' });
    this.logger.warn({ deliveryId: row.id, clientId: row.client_id, attempts: row.attempts, reason }, 'back-channel logout given up');
  }

  /** Give a claimed delivery back untried (stopping). */
  private async release(id: string): Promise<void> {
    await this.update(id, sql`claimed_by = NULL, claimed_until = NULL, attempts = ${backchannelDeliveries.attempts} - 1`);
  }

  private async update(id: string, set: ReturnType<typeof sql>): Promise<void> {
    await retrying(() => this.db.execute(sql`UPDATE ${backchannelDeliveries} SET ${set} WHERE ${backchannelDeliveries.id} = ${id}::uuid`), {
      retries: this.deps.retries,
    });
  }

  private async pruneNow(): Promise<void> {
    const now = this.deps.clock();
    if (now - this.lastPrune < 3600_000) return;
    this.lastPrune = now;
    const before = new Date(now - this.o.keepMs).toISOString();
    const d = backchannelDeliveries;
    await retrying(
      () =>
        this.db.execute(sql`DELETE FROM ${d} WHERE ${d.deliveredAt} < ${before}::timestamptz OR ${d.failedAt} < ${before}::timestamptz`),
      { retries: this.deps.retries },
    );
  }
}

/** A short, secret-free reason: the socket error code or the timeout, never the client's text. */
function errorCode(err: unknown): string {
  const e = err as { name?: unknown; code?: unknown; cause?: { code?: unknown } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout';
  const code = typeof e.cause?.code === 'string' ? e.cause.code : e.code;
  if (typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code)) return code;
  return 'error';
}
