// A database host going away while another answers (docs/api.md
// "Configuration": DATABASE_URL takes a host list). Two relays in front of one
// server stand in for two CockroachDB nodes: stopping the first one must not
// stop the service. Runs on PostgreSQL and on the TLS stand-in.
import { describe, expect, it } from 'vitest';
import { sleep } from '../helpers/eventually.js';
import { connectPostgres } from '../../src/db/connect.js';
import { parseDatabaseUrl } from '../../src/lib/database-url.js';
import { createTestApp } from '../helpers/app.js';
import { client, registerAndLogin } from '../helpers/http.js';
import { freePort, TcpProxy } from '../helpers/processes.js';
import { freshPostgres } from '../helpers/services.js';

const tls = { caCert: process.env.TEST_DATABASE_CA, clientCert: process.env.TEST_DATABASE_CERT, clientKey: process.env.TEST_DATABASE_KEY };

describe('a database host going away', () => {
  it('goes on answering through the next host of the list, losing no acknowledged write', async () => {
    const fresh = await freshPostgres();
    const parsed = parseDatabaseUrl(fresh.url);
    const target = Number(parsed.url.port || 5432);
    const [first, second] = [new TcpProxy(await freePort(), target), new TcpProxy(await freePort(), target)];
    await first.open();
    await second.open();
    // The certificate of the TLS stand-in names localhost; the relays listen on 127.0.0.1.
    const name = parsed.url.hostname === 'localhost' ? 'localhost' : '127.0.0.1';
    const url = fresh.url.replace(`@${parsed.url.host}`, `@${name}:${first.port},${name}:${second.port}`);
    const database = await connectPostgres({ url, ...tls, poolSize: 4 });
    const t = await createTestApp({ database, overrides: { RATE_LIMIT_REQUESTS: '1000000' } });
    const call = client(t);
    try {
      const s = await registerAndLogin(call);
      const rename = (n: number) => call('PUT', '/users/me', { token: s.accessToken, body: { name: `Name ${n}` } });
      for (let i = 0; i < 5; i++) expect((await rename(i)).status).toBe(200);

      await first.cut(); // the first host of the list stops: its connections drop, it refuses new ones
      const statuses: number[] = [];
      let lastOk = -1;
      for (let i = 5; i < 60; i++) {
        const res = await rename(i);
        statuses.push(res.status);
        if (res.status === 200) lastOk = i;
        else await sleep(50);
      }
      // Requests caught on a dropped connection may get 503; none is a 500, and the rest succeed.
      expect(statuses.filter((st) => st !== 200 && st !== 503)).toEqual([]);
      expect(statuses.slice(-40).every((st) => st === 200)).toBe(true);
      const me = await call('GET', '/users/me', { token: s.accessToken });
      expect(me.body.name).toBe(`Name ${lastOk}`);
      const tally: Record<number, number> = {};
      for (const st of statuses) tally[st] = (tally[st] ?? 0) + 1;
      console.log(`failover: statuses after the cut ${JSON.stringify(tally)}`);
    } finally {
      await t.stop();
      await database.close();
      await second.cut();
      await fresh.dispose();
    }
  });
});
