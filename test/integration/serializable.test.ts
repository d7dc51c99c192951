// withTx on a real server: two transactions that each read and then write on the
// strength of what they read conflict at SERIALIZABLE; the loser gets SQLSTATE
// 40001 and withTx runs it again, so both land and the result is what a serial
// order gives. Runs on the local PostgreSQL (or whatever TEST_DATABASE_URL names:
// in CI, the TLS + serializable stand-in for CockroachDB).
import { asc, count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/connect.js';
import { dbErrorCode } from '../../src/db/errors.js';
import { migrate } from '../../src/db/migrate.js';
import { posts, users } from '../../src/db/schema.js';
import { withTx, type Tx } from '../../src/db/tx.js';
import { openDatabase } from '../helpers/services.js';

/** Resolves once `parties` callers have arrived: makes both transactions read before either writes. */
function barrier(parties: number) {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    if (++arrived === parties) open();
    return opened;
  };
}

describe('withTx at SERIALIZABLE on PostgreSQL', () => {
  let db: Db;
  let dispose: () => Promise<void>;
  let authorId: string;

  beforeAll(async () => {
    const opened = await openDatabase('postgres');
    db = opened.database.db;
    dispose = opened.dispose;
    await migrate(db);
  });
  afterAll(async () => {
    await dispose?.();
  });
  beforeEach(async () => {
    const [u] = await db
      .insert(users)
      .values({ email: `writer-${Math.random().toString(36).slice(2)}@example.test`, name: 'Writer', passwordHash: 'x' })
      .returning({ id: users.id });
    authorId = u!.id;
  });

  /** "Number my post after the ones already there": a read, then a write that depends on it. */
  const numberedPost = async (tx: Tx) => {
    const [row] = await tx.select({ n: count() }).from(posts).where(eq(posts.authorId, authorId));
    return { n: Number(row!.n), insert: (n: number) => tx.insert(posts).values({ authorId, title: `#${n}`, body: 'numbered' }) };
  };

  const titles = async () =>
    (await db.select({ title: posts.title }).from(posts).where(eq(posts.authorId, authorId)).orderBy(asc(posts.title))).map((r) => r.title);

  it('two conflicting transactions both succeed through the retry, numbered as if run one after the other', async () => {
    const bothRead = barrier(2);
    const retries: { attempt: number; code: string | undefined }[] = [];
    const counted = {
      n: 0,
      inc() {
        this.n++;
      },
    };
    const attempts = [0, 0];
    const run = (i: 0 | 1) =>
      withTx(
        db,
        async (tx) => {
          attempts[i]!++;
          const { n, insert } = await numberedPost(tx);
          // Only the first attempts meet: a retry must not wait for a partner that already finished.
          if (attempts[i] === 1) await bothRead();
          await insert(n + 1);
        },
        { retries: counted, onRetry: (attempt, err) => retries.push({ attempt, code: dbErrorCode(err) }) },
      );

    await Promise.all([run(0), run(1)]);
    // Every retry is counted (what db_transaction_retries_total reports).
    expect(counted.n).toBe(retries.length);

    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries.every((r) => r.code === '40001')).toBe(true);
    expect(attempts[0]! + attempts[1]!).toBe(2 + retries.length);
    expect(await titles()).toEqual(['#1', '#2']);
  });

  it('the same interleaving without SERIALIZABLE loses an update (so the test above does force a conflict)', async () => {
    const bothRead = barrier(2);
    const run = () =>
      db.transaction(
        async (tx) => {
          const { n, insert } = await numberedPost(tx as unknown as Tx);
          await bothRead();
          await insert(n + 1);
        },
        { isolationLevel: 'read committed' },
      );

    await Promise.all([run(), run()]);

    expect(await titles()).toEqual(['#1', '#1']);
  });

  it('does not retry other errors', async () => {
    let calls = 0;
    let retried = 0;
    const duplicateEmail = `dup-${Math.random().toString(36).slice(2)}@example.test`;
    await db.insert(users).values({ email: duplicateEmail, name: 'First', passwordHash: 'x' });

    const err = await withTx(
      db,
      async (tx) => {
        calls++;
        await tx.insert(users).values({ email: duplicateEmail, name: 'Second', passwordHash: 'x' });
      },
      { retries: { inc: () => retried++ } },
    ).catch((e: unknown) => e);

    expect(dbErrorCode(err)).toBe('23505');
    expect(calls).toBe(1);
    expect(retried).toBe(0);
  });

  it('gives up after maxAttempts and rethrows the serialization failure', async () => {
    let calls = 0;
    const err = await withTx(
      db,
      async () => {
        calls++;
        throw Object.assign(new Error('could not serialize access'), { code: '40001' });
      },
      { retries: { inc: () => {} }, maxAttempts: 3 },
    ).catch((e: unknown) => e);

    expect(dbErrorCode(err)).toBe('40001');
    expect(calls).toBe(3);
  });
});
