// The transactional outbox. A mail is inserted in the transaction of the change
// that causes it (enqueueMail), so it exists exactly when the change does. A
// sender on every instance claims due rows with one conditional UPDATE (a lease:
// claimed_by and claimed_until; no advisory locks, so CockroachDB and
// PostgreSQL both accept it), hands each to the Mailer and records the outcome.
// An outage or a refusal that may pass (connection errors, 4xx) is retried with
// capped exponential backoff until the message expires; a 5xx refusal ends it.
// Two instances never send one message twice while its claim lasts; a crash
// between sending and recording is the one case that sends it again.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Db } from '../../db/connect.js';
import { mailOutbox } from '../../db/schema.js';
import { rowsOf } from '../../db/rows.js';
import { retrying, type Tx, type TxOptions } from '../../db/tx.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer, MailMessage } from './mailer.js';
import { PermanentMailError } from './smtp-mailer.js';
import type { MailKind } from './templates.js';

export type OutboxMessage = MailMessage & { kind: MailKind; expiresAt: Date };

/** Add a message to the outbox inside the caller's transaction. */
export async function enqueueMail(tx: Tx | Db, message: OutboxMessage, now: Date): Promise<void> {
  await tx.insert(mailOutbox).values({
    kind: message.kind,
    toAddress: message.to,
    subject: message.subject,
    textBody: message.text,
    htmlBody: message.html ?? null,
    createdAt: now,
    expiresAt: message.expiresAt,
    nextAttemptAt: now,
  });
}

export type OutboxOptions = {
  /** How often each instance looks for due messages (besides being woken after a commit). */
  pollMs?: number;
  /** How long a claim lasts: longer than one SMTP hand-over can take. */
  claimMs?: number;
  batchSize?: number;
  /** First retry delay; doubles per attempt up to maxBackoffMs (with jitter). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Sent and abandoned rows are deleted after this. */
  keepMs?: number;
};

type Claimed = {
  id: string;
  kind: string;
  to_address: string;
  subject: string;
  text_body: string | null;
  html_body: string | null;
  expires_at: string | Date;
  attempts: number;
};

type Events = { inc(labels: { event: 'sent' | 'retried' | 'abandoned' }): void };

export class OutboxSender {
  private readonly id = `sender-${randomUUID()}`;
  private readonly o: Required<OutboxOptions>;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastProblemLog = 0;
  private lastPrune = 0;

  constructor(
    private readonly db: Db,
    private readonly mailer: Mailer,
    private readonly logger: Logger,
    private readonly deps: { clock: () => number; retries: TxOptions['retries']; events: Events },
    options: OutboxOptions = {},
  ) {
    this.o = {
      pollMs: options.pollMs ?? 2_000,
      claimMs: options.claimMs ?? 120_000,
      batchSize: options.batchSize ?? 20,
      baseBackoffMs: options.baseBackoffMs ?? 5_000,
      maxBackoffMs: options.maxBackoffMs ?? 10 * 60_000,
      keepMs: options.keepMs ?? 7 * 86_400_000,
    };
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.wake(), this.o.pollMs);
    (this.timer as { unref?: () => void }).unref?.();
    this.wake();
  }

  /** Look for due messages now (called after a commit that enqueued one). */
  wake(): void {
    // Not started: this instance leaves the outbox to the others.
    if (this.stopped || !this.timer) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.cycle().finally(() => {
      this.running = undefined;
    });
  }

  /**
   * One batch now, after the cycle in progress (started or not: a test drives
   * the sender with it). Resolves to the number of messages it claimed; a
   * database failure is logged and counts as none.
   */
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
        // A commit woke the sender meanwhile: its message may have missed this batch.
        if (this.again) this.wake();
      });
    await this.running;
    return claimed;
  }

  /** Resolves once nothing is in flight and nothing is due: it sends what is due itself, batch after batch. */
  async idle(): Promise<void> {
    while ((await this.runOnce()) > 0);
  }

  /** Stop polling and wait for the message being handed over, if any. */
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

  /** One batch: the number of messages claimed, or -1 when the database failed. */
  private async step(): Promise<number> {
    try {
      const n = await this.sendDue();
      await this.pruneNow();
      return n;
    } catch (err) {
      // The database is unreachable or refused: the next poll tries again.
      const now = Date.now();
      if (now - this.lastProblemLog > 10_000) {
        this.lastProblemLog = now;
        this.logger.warn({ err }, 'mail outbox: could not read or update pending mail; retrying');
      }
      return -1;
    }
  }

  private async sendDue(): Promise<number> {
    const now = new Date(this.deps.clock());
    const until = new Date(now.getTime() + this.o.claimMs);
    const free = sql`${mailOutbox.sentAt} IS NULL AND ${mailOutbox.failedAt} IS NULL AND (${mailOutbox.claimedUntil} IS NULL OR ${mailOutbox.claimedUntil} < ${now.toISOString()}::timestamptz)`;
    // The outer condition repeats the inner one: under READ COMMITTED a row that
    // another sender claimed meanwhile is re-checked and skipped; under
    // SERIALIZABLE the loser of a race retries and finds nothing.
    const claimed = rowsOf<Claimed>(
      await retrying(
        () =>
          this.db.execute(sql`
            UPDATE ${mailOutbox}
            SET claimed_by = ${this.id}, claimed_until = ${until.toISOString()}::timestamptz, attempts = ${mailOutbox.attempts} + 1
            WHERE ${mailOutbox.id} IN (
              SELECT ${mailOutbox.id} FROM ${mailOutbox}
              WHERE ${free} AND ${mailOutbox.nextAttemptAt} <= ${now.toISOString()}::timestamptz
              ORDER BY ${mailOutbox.nextAttemptAt}
              LIMIT ${this.o.batchSize}
            ) AND ${free}
            RETURNING id, kind, to_address, subject, text_body, html_body, expires_at, attempts`),
        { retries: this.deps.retries },
      ),
    );
    for (const row of claimed) {
      if (this.stopped) {
        await this.release(row.id);
        continue;
      }
      await this.deliver(row);
    }
    return claimed.length;
  }

  private async deliver(row: Claimed): Promise<void> {
    const now = this.deps.clock();
    if (new Date(row.expires_at).getTime() <= now || row.text_body === null) {
      await this.abandon(row, 'expired');
      return;
    }
    try {
      await this.mailer.send({
        to: row.to_address,
        subject: row.subject,
        text: row.text_body,
        ...(row.html_body !== null ? { html: row.html_body } : {}),
      });
    } catch (err) {
      if (err instanceof PermanentMailError) {
        await this.abandon(row, `smtp ${err.responseCode}`);
        return;
      }
      await this.retryLater(row, err);
      return;
    }
    // Sent: the body (and the link in it) leaves the table.
    await this.update(
      row.id,
      sql`sent_at = ${new Date(this.deps.clock()).toISOString()}::timestamptz, text_body = NULL, html_body = NULL, claimed_until = NULL, last_error = NULL`,
    );
    this.deps.events.inc({ event: 'sent' });
    this.logger.info({ mailId: row.id, kind: row.kind, attempts: row.attempts }, 'mail sent');
  }

  private async retryLater(row: Claimed, err: unknown): Promise<void> {
    const backoff = Math.min(this.o.maxBackoffMs, this.o.baseBackoffMs * 2 ** Math.min(20, row.attempts - 1));
    const delay = Math.round(backoff * (0.5 + Math.random() / 2));
    const reason = errorCode(err);
    await this.update(
      row.id,
      sql`next_attempt_at = ${new Date(this.deps.clock() + delay).toISOString()}::timestamptz, claimed_by = NULL, claimed_until = NULL, last_error = ${reason}`,
    );
    this.deps.events.inc({ event: 'retried' });
    this.logger.warn({ mailId: row.id, kind: row.kind, attempts: row.attempts, reason, retryInMs: delay }, 'mail not sent yet; will retry');
  }

  private async abandon(row: Claimed, reason: string): Promise<void> {
    await this.update(
      row.id,
      sql`failed_at = ${new Date(this.deps.clock()).toISOString()}::timestamptz, text_body = NULL, html_body = NULL, claimed_until = NULL, last_error = ${reason}`,
    );
    this.deps.events.inc({ event: 'abandoned' });
    this.logger.warn({ mailId: row.id, kind: row.kind, attempts: row.attempts, reason }, 'mail abandoned');
  }

  /** Give a claimed message back untried (stopping). */
  private async release(id: string): Promise<void> {
    await this.update(id, sql`claimed_by = NULL, claimed_until = NULL, attempts = ${mailOutbox.attempts} - 1`);
  }

  private async update(id: string, set: ReturnType<typeof sql>): Promise<void> {
    await retrying(() => this.db.execute(sql`UPDATE ${mailOutbox} SET ${set} WHERE ${mailOutbox.id} = ${id}::uuid`), {
      retries: this.deps.retries,
    });
  }

  private async pruneNow(): Promise<void> {
    const now = this.deps.clock();
    if (now - this.lastPrune < 3600_000) return;
    this.lastPrune = now;
    const before = new Date(now - this.o.keepMs).toISOString();
    await retrying(
      () =>
        this.db.execute(
          sql`DELETE FROM ${mailOutbox} WHERE ${mailOutbox.sentAt} < ${before}::timestamptz OR ${mailOutbox.failedAt} < ${before}::timestamptz`,
        ),
      { retries: this.deps.retries },
    );
  }
}

/** A short, secret-free reason: the socket or SMTP error code, never the server's text. */
function errorCode(err: unknown): string {
  const e = err as { code?: unknown; responseCode?: unknown };
  if (typeof e.responseCode === 'number') return `smtp ${e.responseCode}`;
  if (typeof e.code === 'string' && /^[A-Z_]{2,40}$/.test(e.code)) return e.code;
  return 'error';
}
