// `npm run soak`: mixed traffic against the service on PostgreSQL + Redis for a
// while, reporting served requests, 5xx, RSS, heap and event-loop lag over
// time. SOAK_SECONDS (default 600) and SOAK_CONCURRENCY (default 16).
// Not part of npm test: it reports figures; it fails only on a 5xx.
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ServerProcess } from '../helpers/processes.js';
import { freshPostgres, REDIS_URL } from '../helpers/services.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 16);
const SAMPLE_MS = Number(process.env.SOAK_SAMPLE_SECONDS ?? 10) * 1000;
const PASSWORD = 'soak-passphrase-for-tests-1';

const db = await freshPostgres();
const server = new ServerProcess(await freePort(), {
  DATABASE_URL: db.url,
  REDIS_URL,
  DATA_DIR: mkdtempSync(join(tmpdir(), 'auth-soak-')),
  RATE_LIMIT_REQUESTS: '1000000',
  LOGIN_MAX_FAILURES: '10000',
  NODE_OPTIONS: '--max-old-space-size=512',
});
await server.start(60_000);
const base = server.url;
const post = (path: string, body: unknown, token?: string) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });

type User = { email: string; access: string; refresh: string; posts: string[] };
const users: User[] = [];
for (let i = 0; i < CONCURRENCY; i++) {
  const email = `soak-${i}-${Date.now()}@example.test`;
  await post('/auth/register', { email, password: PASSWORD, name: `Soak ${i}` });
  const pair = (await (await post('/auth/login', { email, password: PASSWORD })).json()) as { accessToken: string; refreshToken: string };
  users.push({ email, access: pair.accessToken, refresh: pair.refreshToken, posts: [] });
}

let served = 0;
let fiveHundreds = 0;
const byStatus = new Map<number, number>();
let running = true;

async function step(u: User): Promise<void> {
  const r = Math.random();
  let res: Response;
  if (r < 0.55) res = await fetch(`${base}/users/me`, { headers: { authorization: `Bearer ${u.access}` } });
  else if (r < 0.8) res = await fetch(`${base}/posts?limit=20`);
  else if (r < 0.9) {
    res = await post('/posts', { title: 'soak', body: 'x'.repeat(200) }, u.access);
    if (res.status === 201) u.posts.push(((await res.clone().json()) as { id: string }).id);
  } else if (r < 0.96 && u.posts.length) {
    res = await fetch(`${base}/posts/${u.posts.pop()}`, { method: 'DELETE', headers: { authorization: `Bearer ${u.access}` } });
  } else if (r < 0.99) {
    res = await post('/auth/refresh', { refreshToken: u.refresh });
    if (res.status === 200) {
      const pair = (await res.clone().json()) as { accessToken: string; refreshToken: string };
      u.access = pair.accessToken;
      u.refresh = pair.refreshToken;
    }
  } else {
    res = await post('/auth/login', { email: u.email, password: PASSWORD });
    if (res.status === 200) {
      const pair = (await res.clone().json()) as { accessToken: string; refreshToken: string };
      u.access = pair.accessToken;
      u.refresh = pair.refreshToken;
    }
  }
  await res.arrayBuffer();
  served++;
  byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
  if (res.status >= 500) fiveHundreds++;
}

const rssMb = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc!.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};
const metric = (text: string, name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);

type Sample = { t: number; served: number; rssMb: number; heapMb: number; lagP99Ms: number; fiveHundreds: number };
const samples: Sample[] = [];
const started = Date.now();
const sampler = setInterval(async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const s: Sample = {
    t: Math.round((Date.now() - started) / 1000),
    served,
    rssMb: Math.round(rssMb()),
    heapMb: Math.round(metric(text, 'nodejs_heap_size_used_bytes') / 1048576),
    lagP99Ms: Math.round(metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000 * 10) / 10,
    fiveHundreds,
  };
  samples.push(s);
  console.log(`t=${s.t}s served=${s.served} rss=${s.rssMb}MB heap=${s.heapMb}MB lag_p99=${s.lagP99Ms}ms 5xx=${s.fiveHundreds}`);
}, SAMPLE_MS);

await Promise.all(
  users.map(async (u) => {
    while (running && Date.now() - started < SECONDS * 1000) await step(u).catch(() => {});
  }),
);
running = false;
clearInterval(sampler);
const exit = await server.stop('SIGTERM');
await db.dispose();

const at = (sec: number) => samples.reduce((best, s) => (Math.abs(s.t - sec) < Math.abs(best.t - sec) ? s : best), samples[0]!);
const first = at(60);
const last = samples.at(-1)!;
console.log('\nsoak summary');
console.log(
  `  duration ${SECONDS}s, concurrency ${CONCURRENCY}, requests served ${served} (${Math.round(served / SECONDS)}/s), 5xx ${fiveHundreds}`,
);
console.log(`  statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}`);
console.log(`  RSS at ~1 min ${first.rssMb} MB, at end ${last.rssMb} MB; heap at ~1 min ${first.heapMb} MB, at end ${last.heapMb} MB`);
console.log(`  event-loop lag p99: max ${Math.max(...samples.map((s) => s.lagP99Ms))} ms`);
console.log(`  server exit code on SIGTERM: ${exit}`);
process.exit(fiveHundreds === 0 && exit === 0 ? 0 : 1);
