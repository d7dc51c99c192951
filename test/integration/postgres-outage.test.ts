// PostgreSQL stops under load and comes back: 503 service_unavailable (never a
// 500), /readyz 503 naming the database, recovery without a restart, and no
// acknowledged write lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/eventually.js';
import { connectPostgres, type Database } from '../../src/db/connect.js';
import { posts } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { client, registerAndLogin, type Call } from '../helpers/http.js';
import { freePort, PostgresProcess } from '../helpers/processes.js';

describe('PostgreSQL outage', () => {
  let pg: PostgresProcess;
  let database: Database;
  let t: TestApp;
  let call: Call;

  beforeAll(async () => {
    pg = new PostgresProcess(await freePort());
    await pg.init();
    await pg.start();
    database = await connectPostgres({ url: pg.url, poolSize: 5 });
    t = await createTestApp({ database, overrides: { RATE_LIMIT_REQUESTS: '1000000' } });
    call = client(t);
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
    await database?.close();
    await pg?.destroy();
  });

  it('answers 503 while the database is down and recovers by itself, losing no acknowledged write', async () => {
    const s = await registerAndLogin(call);
    const acknowledged: string[] = [];
    const statuses = new Map<number, number>();
    const codes = new Set<string>();
    let running = true;
    const worker = async (w: number) => {
      for (let i = 0; running; i++) {
        const res =
          i % 2
            ? await call('POST', '/posts', { token: s.accessToken, body: { title: `w${w}-${i}`, body: 'b' } })
            : await call('GET', '/posts', { token: s.accessToken });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 400) codes.add(res.body.code);
        if (res.status === 201) acknowledged.push(res.body.id);
        await sleep(5);
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));
    await sleep(500);
    let mark = Date.now();
    const phase = (name: string) => {
      console.log(`phase ${name}: ${Date.now() - mark} ms`);
      mark = Date.now();
    };
    await pg.stop('fast');
    phase('stop');
    await sleep(1500);
    const ready = await call('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.detail).toContain('database');
    expect(ready.body.checks.database).toBe('down');
    const t0 = Date.now();
    const during = await call('POST', '/posts', { token: s.accessToken, body: { title: 'x', body: 'y' } });
    console.log('during-outage request took', Date.now() - t0, 'ms');
    expect(during.status).toBe(503);
    expect(during.body.code).toBe('service_unavailable');
    expect(during.text).not.toMatch(/ECONNREFUSED|insert into|postgres/i);

    await pg.start();
    phase('start');
    let recovered = false;
    for (let i = 0; i < 100 && !recovered; i++) {
      recovered = (await call('GET', '/readyz')).status === 200;
      if (!recovered) await sleep(100);
    }
    expect(recovered).toBe(true);
    phase('recovered');
    await sleep(500);
    running = false;
    await load;
    phase('load drained');

    expect(statuses.get(500) ?? 0).toBe(0);
    expect([...statuses.keys()].filter((k) => k >= 500 && k !== 503)).toEqual([]);
    expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
    expect([...codes].filter((c) => c !== 'service_unavailable')).toEqual([]);
    const after = await call('POST', '/posts', { token: s.accessToken, body: { title: 'after', body: 'b' } });
    expect(after.status).toBe(201);
    const stored = new Set((await database.db.select({ id: posts.id }).from(posts)).map((r) => r.id));
    expect(acknowledged.length).toBeGreaterThan(5);
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    console.log(
      `postgres outage: statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${acknowledged.length} acknowledged writes all stored`,
    );
  }, 120_000);
});
