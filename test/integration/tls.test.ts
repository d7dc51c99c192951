// The secure database as a client meets it (CI: .ci/tls-postgres.sh, the TLS +
// client-certificate + serializable stand-in for CockroachDB): only a verified
// TLS connection that presents a certificate gets in, the server's certificate is
// checked against our CA, every transaction is SERIALIZABLE, and the app's own
// connection code and migrations work there.
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import postgres from 'postgres';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, tlsFromUrl, type Database } from '../../src/db/connect.js';
import { dbErrorCode } from '../../src/db/errors.js';
import { migrate } from '../../src/db/migrate.js';
import { rowsOf } from '../../src/db/rows.js';
import { users } from '../../src/db/schema.js';
import { withTx } from '../../src/db/tx.js';
import { freshPostgres } from '../helpers/services.js';

const TLS_URL = process.env.TEST_TLS_DATABASE_URL;
if (!TLS_URL) {
  console.warn(
    'tls.test.ts skipped: TEST_TLS_DATABASE_URL is unset. Start the TLS cluster with\n' +
      '  eval "$(bash .ci/tls-postgres.sh)"\nand run again (CI does).',
  );
}

/** The certificate files: TEST_TLS_DATABASE_*, else TEST_DATABASE_*, else the URL's sslrootcert/sslcert/sslkey. */
function files(url: string) {
  const p = new URL(url).searchParams;
  const env = process.env;
  return {
    ca: env.TEST_TLS_DATABASE_CA ?? env.TEST_DATABASE_CA ?? p.get('sslrootcert') ?? undefined,
    cert: env.TEST_TLS_DATABASE_CERT ?? env.TEST_DATABASE_CERT ?? p.get('sslcert') ?? undefined,
    key: env.TEST_TLS_DATABASE_KEY ?? env.TEST_DATABASE_KEY ?? p.get('sslkey') ?? undefined,
  };
}

/** The same URL with other TLS parameters (the certificate paths travel in it). */
function variant(url: string, params: Record<string, string | undefined>): string {
  const u = new URL(url);
  for (const k of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey']) u.searchParams.delete(k);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}

/** Connects with exactly these TLS options (none of the TEST_DATABASE_* fallbacks) and runs one query. */
async function tryQuery(url: string, query = 'SELECT current_user AS user'): Promise<Record<string, unknown>[]> {
  const t = tlsFromUrl({ url });
  const client = postgres(t.url, { ssl: t.ssl, max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    return [...(await client.unsafe(query))];
  } finally {
    await client.end({ timeout: 1 });
  }
}

/** CockroachDB answers version() with its own name. */
async function isPostgres(database: Database): Promise<boolean> {
  const [v] = rowsOf<{ version: string }>(await database.db.execute(sql`SELECT version() AS version`));
  return !/cockroach/i.test(v?.version ?? '');
}

/** A refusal by the server (authentication or protocol), not a network failure. */
function expectRefusedByServer(err: unknown) {
  expect(err).toBeInstanceOf(Error);
  const code = dbErrorCode(err) ?? '';
  expect(code, `expected an SQLSTATE 28xxx/08xxx refusal, got ${code}: ${(err as Error).message}`).toMatch(/^(28|08)/);
}

describe.skipIf(!TLS_URL)('the TLS, client-certificate, serializable database (TEST_TLS_DATABASE_URL)', () => {
  // The body is still collected when skipped: a placeholder keeps it from throwing.
  const base = TLS_URL ?? 'postgresql://unset@localhost/postgres';
  const { ca, cert, key } = files(base);
  const verified = variant(base, { sslmode: 'verify-full', sslrootcert: ca, sslcert: cert, sslkey: key });

  it('has the certificate files it needs', () => {
    for (const f of [ca, cert, key]) {
      expect(f, 'set TEST_DATABASE_CA, TEST_DATABASE_CERT and TEST_DATABASE_KEY (tls-postgres.sh prints them)').toBeTruthy();
      expect(existsSync(f!), `${f} exists`).toBe(true);
    }
  });

  it('refuses a plain (non-TLS) connection', async () => {
    const err = await tryQuery(variant(base, { sslmode: 'disable' })).catch((e: unknown) => e);
    expectRefusedByServer(err);
  });

  it('refuses a TLS connection that presents no client certificate', async () => {
    const err = await tryQuery(variant(base, { sslmode: 'verify-full', sslrootcert: ca })).catch((e: unknown) => e);
    expectRefusedByServer(err);
  });

  // tls-postgres.sh leaves client.root.* beside client.app.*; elsewhere this case may not apply.
  const root = cert ? { crt: join(dirname(cert), 'client.root.crt'), key: join(dirname(cert), 'client.root.key') } : undefined;
  it.skipIf(!root || !existsSync(root.crt))(
    "refuses a client certificate issued to another user (the CN must be the user's name)",
    async () => {
      const asApp = new URL(variant(base, { sslmode: 'verify-full', sslrootcert: ca, sslcert: root!.crt, sslkey: root!.key }));
      asApp.username = 'app';
      const err = await tryQuery(asApp.toString()).catch((e: unknown) => e);
      expectRefusedByServer(err);
    },
  );

  it("verifies the server's certificate against our CA, not the system's", async () => {
    // verify-full without sslrootcert: Node's default CAs cannot vouch for a private CA.
    const err = await tryQuery(variant(base, { sslmode: 'verify-full', sslcert: cert, sslkey: key })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toMatch(/CERT|SIGN|ISSUER|VERIFY/);
  });

  it('lets verify-full with the app certificate in, encrypted, as app, at SERIALIZABLE', async () => {
    const database = await connectPostgres({ url: base, caCert: ca, clientCert: cert, clientKey: key, poolSize: 1 });
    try {
      const [who] = rowsOf<{ user: string }>(await database.db.execute(sql`SELECT current_user AS "user"`));
      expect(who?.user).toBe('app');
      const [iso] = rowsOf<{ default_transaction_isolation: string }>(await database.db.execute(sql`SHOW default_transaction_isolation`));
      expect(iso?.default_transaction_isolation).toBe('serializable');
      if (await isPostgres(database)) {
        // PostgreSQL's own view of the connection (CockroachDB has no pg_stat_ssl).
        const [tls] = rowsOf<{ ssl: boolean }>(await database.db.execute(sql`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`));
        expect(tls?.ssl).toBe(true);
      }
    } finally {
      await database.close();
    }
  });

  describe('the app on it', () => {
    let database: Database;
    let dispose: () => Promise<void>;

    beforeAll(async () => {
      // The certificate paths travel in the URL, so the fresh database gets them too.
      const fresh = await freshPostgres(verified);
      dispose = fresh.dispose;
      database = await connectPostgres({ url: fresh.url, poolSize: 2 });
    });
    afterAll(async () => {
      await database?.close();
      await dispose?.();
    });

    it('applies the migrations once, and a second run finds nothing to do', async () => {
      const first = await migrate(database.db);
      expect(first.applied).toBeGreaterThanOrEqual(1);
      const tables = rowsOf<{ table_name: string }>(
        await database.db.execute(
          sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('users', 'roles', 'posts', 'sessions') ORDER BY table_name`,
        ),
      ).map((r) => r.table_name);
      expect(tables).toEqual(['posts', 'roles', 'sessions', 'users']);
      expect((await migrate(database.db)).applied).toBe(0);
    });

    it('writes through withTx over the verified connection', async () => {
      const email = `tls-${Date.now()}@example.test`;
      const id = await withTx(
        database.db,
        async (tx) => {
          const [u] = await tx.insert(users).values({ email, name: 'TLS', passwordHash: 'x' }).returning({ id: users.id });
          return u!.id;
        },
        { retries: { inc: () => {} } },
      );
      const [row] = rowsOf<{ email: string }>(await database.db.execute(sql`SELECT email FROM users WHERE id = ${id}`));
      expect(row?.email).toBe(email);
    });
  });
});
