// Server-side timeouts (docs/api.md "Configuration"): a statement that waits
// for a lock longer than DATABASE_LOCK_TIMEOUT_MS ends, the request gets 503
// with Retry-After, and the pool slot is free again. PostgreSQL only: PGlite
// is one connection in-process, with no other session to hold a lock.
import postgres from 'postgres';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { connectPostgres, tlsFromUrl } from '../../src/db/connect.js';
import { rowsOf } from '../../src/db/rows.js';
import { createTestApp } from '../helpers/app.js';
import { client, registerAndLogin } from '../helpers/http.js';
import { freshPostgres } from '../helpers/services.js';

// The TLS files of the CockroachDB stand-in, when CI points the suite at it.
const tls = { caCert: process.env.TEST_DATABASE_CA, clientCert: process.env.TEST_DATABASE_CERT, clientKey: process.env.TEST_DATABASE_KEY };

describe('database timeouts on PostgreSQL', () => {
  it('names the service and sets the configured timeouts on every connection', async () => {
    const fresh = await freshPostgres();
    const database = await connectPostgres({ url: fresh.url, ...tls, statementTimeoutMs: 12_345, lockTimeoutMs: 678 });
    try {
      const [row] = rowsOf<{ a: string; s: string; l: string }>(
        await database.db.execute(
          sql`SELECT current_setting('application_name') AS a, current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l`,
        ),
      );
      expect(row).toEqual({ a: 'auth-system', s: '12345ms', l: '678ms' });
    } finally {
      await database.close();
      await fresh.dispose();
    }
  });

  it('answers 503 with Retry-After when a lock is held past DATABASE_LOCK_TIMEOUT_MS, then serves the request once it is free', async () => {
    const fresh = await freshPostgres();
    const database = await connectPostgres({ url: fresh.url, ...tls, poolSize: 2, lockTimeoutMs: 300 });
    const t = await createTestApp({ database, overrides: { DATABASE_LOCK_TIMEOUT_MS: '300' } });
    const direct = tlsFromUrl({ url: fresh.url, ...tls });
    const holder = postgres(direct.url, { ssl: direct.ssl, max: 1, onnotice: () => {} });
    let reserved: Awaited<ReturnType<typeof holder.reserve>> | undefined;
    try {
      const call = client(t);
      const s = await registerAndLogin(call);
      // Another session holds the user's row lock, as a long transaction would.
      reserved = await holder.reserve();
      await reserved`BEGIN`;
      await reserved`SELECT id FROM users WHERE id = ${s.userId} FOR UPDATE`;
      const started = Date.now();
      const res = await call('PUT', '/users/me', { token: s.accessToken, body: { name: 'Renamed While Locked' } });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('service_unavailable');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(5_000);
      await reserved`ROLLBACK`;
      reserved.release();
      reserved = undefined;
      const again = await call('PUT', '/users/me', { token: s.accessToken, body: { name: 'Renamed After' } });
      expect(again.status).toBe(200);
      expect(again.body.name).toBe('Renamed After');
    } finally {
      // A failed assertion must not leave the lock held (the rest would wait on it).
      if (reserved) {
        await reserved`ROLLBACK`.catch(() => {});
        reserved.release();
      }
      await t.stop();
      await holder.end();
      await database.close();
      await fresh.dispose();
    }
  });
});
