// Round trips per OpenID flow: the SQL statements (PostgreSQL's statement log
// of the bench's own database) and the Redis commands (MONITOR on the bench's
// own db index) that one code flow (authorize, token, userinfo) and one refresh
// cost the service, each step sent alone after a warm-up. The service runs as
// the bench runs it (compiled dist/, production, audit on).
//
//   npx tsx test/bench/oidc-trips.ts [--flows 5] [--no-build]
//
// Needs the local PostgreSQL's log readable (BENCH_PG_LOG, default
// /var/log/postgresql/postgresql-15-main.log, prefix with %u@%d) and superuser
// rights to set log_statement on the bench's database.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { pkcePair } from '../helpers/oidc-peers.js';
import { adminUrl, recreateDatabase, urlFor } from './lib/pg.js';
import { ADMIN, prepareService, startService } from './lib/service.js';
import { discover, oursTarget, seedRefreshTokens } from './oidc.js';

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const N = Number(opt('--flows') ?? 5);
const DB = 'bench_oidc_trips';
const REDIS_DB = Number(process.env.BENCH_TRIPS_REDIS_DB ?? 6);
const PG_LOG = process.env.BENCH_PG_LOG ?? '/var/log/postgresql/postgresql-15-main.log';
const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

/** The statement lines the bench database's sessions logged since `from` (a byte offset). */
function statementsSince(from: number): string[] {
  const size = statSync(PG_LOG).size;
  const buf = Buffer.alloc(size - from);
  const fd = openSync(PG_LOG, 'r');
  readSync(fd, buf, 0, buf.length, from);
  closeSync(fd);
  return buf
    .toString('utf8')
    .split('\n')
    .filter((l) => l.includes(`@${DB} `) && /LOG:\s+(statement|execute)/.test(l))
    .map((l) => l.replace(/^.*?LOG:\s+/, '').slice(0, 160));
}

const redisUrl = `redis://127.0.0.1:6379/${REDIS_DB}`;
const r = new Redis(redisUrl);
await r.flushdb();
const commands: string[] = [];
const monitorBase = new Redis(redisUrl);
const monitor = await monitorBase.monitor();
monitor.on('monitor', (_time: string, args: string[], source: string, database: string) => {
  // A script's own commands (source "lua") ride on its EVALSHA's round trip.
  if (Number(database) === REDIS_DB && source !== 'lua') commands.push(args.join(' ').slice(0, 120));
});

await recreateDatabase(DB);
const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
await admin.unsafe(`alter database ${DB} set log_statement = 'all'`);
await admin.end();
const build = prepareService({ build: !argv.includes('--no-build'), log });
const runDir = join(tmpdir(), `auth-bench-trips-${Date.now()}`);
mkdirSync(runDir, { recursive: true });
const svc = await startService({ name: 'svc-trips', build, runDir, databaseUrl: urlFor(DB), redisUrl });
try {
  const t = await oursTarget({ base: svc.url, admin: ADMIN, proc: svc });
  const ep = await discover(t.issuer, t.base);
  const chains = await seedRefreshTokens(t, ep, N + 2);
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(t.clientId)}:${encodeURIComponent(t.clientSecret!)}`).toString('base64')}`;
  const steps: Record<string, { sql: string[]; redis: string[] }[]> = {};
  const measure = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    await new Promise((res) => setTimeout(res, 300)); // the audit batch and other timers of the previous step
    const from = statSync(PG_LOG).size;
    const c0 = commands.length;
    const out = await fn();
    await new Promise((res) => setTimeout(res, 300));
    (steps[name] ??= []).push({ sql: statementsSince(from), redis: commands.slice(c0) });
    return out;
  };
  for (let i = 0; i < N + 1; i++) {
    const { verifier, challenge } = await pkcePair();
    const authorize = new URL(ep.authorization);
    authorize.search = new URLSearchParams({
      client_id: t.clientId,
      redirect_uri: t.redirectUri,
      response_type: 'code',
      scope: 'openid email profile',
      state: 's',
      nonce: 'n',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    const name = (s: string) => (i === 0 ? `warm.${s}` : s);
    const code = await measure(name('authorize'), async () => {
      const res = await fetch(authorize, { headers: { cookie: t.cookie }, redirect: 'manual' });
      return new URL(res.headers.get('location')!).searchParams.get('code')!;
    });
    const token = await measure(name('token'), async () => {
      const res = await fetch(ep.token, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: t.redirectUri, code_verifier: verifier }),
      });
      if (res.status !== 200) throw new Error(`token ${res.status} ${await res.text()}`);
      return ((await res.json()) as { access_token: string }).access_token;
    });
    await measure(name('userinfo'), async () => {
      const res = await fetch(ep.userinfo, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) throw new Error(`userinfo ${res.status}`);
      await res.arrayBuffer();
    });
    await measure(name('refresh'), async () => {
      const res = await fetch(ep.token, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: chains[i]! }),
      });
      if (res.status !== 200) throw new Error(`refresh ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    });
  }
  for (const [name, runs] of Object.entries(steps)) {
    if (name.startsWith('warm.')) continue;
    const avg = (k: 'sql' | 'redis') => (runs.reduce((n, x) => n + x[k].length, 0) / runs.length).toFixed(1);
    console.log(`\n== ${name}: ${avg('sql')} SQL statements, ${avg('redis')} Redis commands per request (mean of ${runs.length})`);
    const last = runs.at(-1)!;
    for (const s of last.sql) console.log(`  sql   ${s}`);
    for (const c of last.redis) console.log(`  redis ${c}`);
  }
} finally {
  await svc.stop();
  monitor.disconnect();
  monitorBase.disconnect();
  r.disconnect();
}
process.exit(0);
