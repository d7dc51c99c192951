// The service as a process: start on a bare machine, persist, shut down gracefully.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { tlsFromUrl } from '../../src/db/connect.js';
import { testRsaKey } from '../helpers/app.js';
import { freePort, ServerProcess } from '../helpers/processes.js';
import { freshPostgres } from '../helpers/services.js';
import { sleep } from '../helpers/eventually.js';

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('the service process', () => {
  it('starts embedded with no configuration, answers /healthz within 10 s, and keeps data across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'auth-embedded-'));
    const server = new ServerProcess(await freePort(), { DATA_DIR: dataDir });
    // Start-up time is a figure for the closing note, not a test assertion
    // (a loaded CI machine makes timing flaky); the bound here is generous.
    await server.start(30_000);
    const reg = await fetch(
      `${server.url}/auth/register`,
      json({ email: 'persist@example.test', password: 'persisted-passphrase-1', name: 'P' }),
    );
    expect(reg.status).toBe(201);
    const first = await (
      await fetch(`${server.url}/auth/login`, json({ email: 'persist@example.test', password: 'persisted-passphrase-1' }))
    ).json();
    expect(await server.stop('SIGTERM')).toBe(0);

    const again = new ServerProcess(server.port, { DATA_DIR: dataDir });
    await again.start(30_000);
    try {
      const login = await fetch(`${again.url}/auth/login`, json({ email: 'persist@example.test', password: 'persisted-passphrase-1' }));
      expect(login.status).toBe(200);
      // Same development key after the restart: the earlier token is still good.
      const me = await fetch(`${again.url}/users/me`, { headers: { authorization: `Bearer ${first.accessToken}` } });
      expect(me.status).toBe(200);
    } finally {
      expect(await again.stop('SIGTERM')).toBe(0);
    }
  });

  it('on SIGTERM finishes in-flight requests, flushes the audit log and exits 0', async () => {
    const db = await freshPostgres();
    const server = new ServerProcess(await freePort(), {
      DATABASE_URL: db.url,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'auth-pg-')),
      RATE_LIMIT_REQUESTS: '100000',
    });
    await server.start(30_000);
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      const tag = `term-${Date.now()}`;
      let answered = 0;
      let sent = 0;
      const load = (async () => {
        const workers = Array.from({ length: 8 }, async (_, w) => {
          for (let i = 0; ; i++) {
            sent++;
            try {
              const res = await fetch(`${server.url}/posts`, { headers: { 'x-request-id': `${tag}-${w}-${i}` } });
              await res.arrayBuffer();
              if (res.status !== 200) throw new Error(`status ${res.status}`);
              answered++;
            } catch {
              return; // the server stopped accepting
            }
          }
        });
        await Promise.all(workers);
      })();
      await sleep(1500);
      const code = await server.stop('SIGTERM');
      await load;
      expect(code).toBe(0);
      expect(answered).toBeGreaterThan(50);
      const tls = tlsFromUrl({ url: db.url });
      const sql = postgres(tls.url, { ssl: tls.ssl, max: 1, onnotice: () => {} });
      const [row] = await sql`select count(*)::int as n from audit_logs where request_id like ${`${tag}-%`}`;
      await sql.end();
      // Every request that got a response has its audit entry (a request cut
      // off by the closing connection after it was handled may add one more).
      expect(row!.n).toBeGreaterThanOrEqual(answered);
      expect(row!.n).toBeLessThanOrEqual(sent);
    } finally {
      await server.stop('SIGKILL');
      await db.dispose();
    }
  });

  it('with METRICS_PORT serves /metrics on that listener only (the main one answers 404), in production without METRICS_TOKEN, and exits 0 on SIGTERM', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const metricsPort = await freePort();
    const db = await freshPostgres();
    const server = new ServerProcess(await freePort(), {
      NODE_ENV: 'production',
      DATABASE_URL: db.url,
      JWT_PRIVATE_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      JWT_RSA_PRIVATE_KEY: testRsaKey(),
      MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      SMTP_URL: 'smtp://127.0.0.1:9',
      PUBLIC_URL: 'https://auth.example.test',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'auth-metrics-')),
      METRICS_PORT: String(metricsPort),
    });
    const metricsUrl = `http://127.0.0.1:${metricsPort}`;
    try {
      await server.start(45_000);
      expect((await fetch(`${server.url}/posts`)).status).toBe(200);
      for (const method of ['GET', 'HEAD', 'POST']) {
        const main = await fetch(`${server.url}/metrics`, { method });
        expect(main.status, method).toBe(404);
        if (method === 'GET') expect((await main.json()).code).toBe('not_found');
      }
      const scraped = await fetch(`${metricsUrl}/metrics`);
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toMatch(/http_requests_total\{route="\/posts",method="GET",status="200"\} 1/);
      // Nothing else is served there.
      for (const path of ['/healthz', '/posts', '/auth/login', '/openapi.json']) {
        expect((await fetch(`${metricsUrl}${path}`)).status, path).toBe(404);
      }
      expect(await server.stop('SIGTERM')).toBe(0);
      await expect(fetch(`${metricsUrl}/metrics`)).rejects.toThrow();
    } finally {
      await server.stop('SIGKILL');
      await db.dispose();
    }
  });

  it('cuts off a request whose body stalls with 408 once REQUEST_TIMEOUT_SECONDS have passed', async () => {
    const server = new ServerProcess(await freePort(), {
      DATA_DIR: mkdtempSync(join(tmpdir(), 'auth-stall-')),
      REQUEST_TIMEOUT_SECONDS: '2',
    });
    await server.start(30_000);
    try {
      const started = Date.now();
      const answer = await new Promise<{ text: string; ms: number }>((resolve, reject) => {
        const socket = connect(server.port, '127.0.0.1', () => {
          // Headers promise 100 bytes; only one ever comes.
          socket.write('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
        });
        let text = '';
        socket.on('data', (d) => (text += d));
        socket.on('close', () => resolve({ text, ms: Date.now() - started }));
        socket.on('error', reject);
        setTimeout(() => reject(new Error('still open after 15 s')), 15_000).unref();
      });
      expect(answer.text).toMatch(/^HTTP\/1\.1 408/);
      expect(answer.ms).toBeGreaterThanOrEqual(1_900);
      // The service goes on answering others.
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
  });
});
