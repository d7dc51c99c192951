// `npm run bench`: the performance scenarios of the service, each against a
// yardstick measured in the same run on the same machine. See test/bench/README.md.
//
//   npm run bench                      full run (about 25 min; the first one also seeds 1M rows)
//   npm run bench -- --quick           short durations, one round: for iterating (about 5 min)
//   npm run bench -- --only 1,2,6      a subset (scenarios 1-9, `embedded`, `oidc`, `svc` or its parts `cc`, `introspect`, `svcapi`)
//   npm run bench -- --profile         CPU profiles of the service under scenarios 1 (audit on and off), 2 and 3 (--only 3 for one; --only oidc)
//   npm run bench -- --ref HEAD~1      bench a committed revision (isolated snapshot) instead of the tree
//   npm run bench -- --tsx             run src/ through tsx instead of compiling to dist/
//   npm run bench -- --no-build        use the existing dist/
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { Redis } from 'ioredis';
import { scrapeCounters, setUp, type Setup } from './lib/client.js';
import { load, medianRun, NOISY_CORES, rotating, setLoadLog, startLoad, type LoadFigures, type LoadSpec } from './lib/load.js';
import { databaseExists, recreateDatabase, tableCounts, urlFor } from './lib/pg.js';
import { printProfile, summariseProfile, type ProfileSummary } from './lib/profile.js';
import { closeMeter, waitForQuiet } from './lib/machine.js';
import { sampleRss, type Proc } from './lib/proc.js';
import { freshTokens } from './lib/fresh-tokens.js';
import {
  ADMIN,
  benchJwk,
  benchMetricsToken,
  extraServiceEnv,
  imageNodeFlags,
  prepareService,
  REPO_ROOT,
  startBenchServer,
  startService,
  type ServiceBuild,
} from './lib/service.js';
import { FULL_SCALE, SEED_PASSWORD, seed, type SeedCounts } from './seed.js';
import { failureCount, oidcLoadSpec, oursTarget, prepareOidc, startYardstick, withoutRedirects } from './oidc.js';
import {
  apiRequests,
  ccLoadSpec,
  ccRequests,
  introspectRequests,
  noCcFailures,
  oursCcTarget,
  SERVICE_CLIENT_SCENARIOS,
  type ServiceClientScenario,
  startCcYardstick,
} from './service-clients.js';

// ---------------------------------------------------------------- settings

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const envNum = (name: string, dflt: number) => (process.env[name] ? Number(process.env[name]) : dflt);

const quick = flag('--quick');
const S = {
  quick,
  rounds: envNum('BENCH_ROUNDS', quick ? 1 : 3),
  warmupS: envNum('BENCH_WARMUP_SECONDS', quick ? 2 : 5),
  durationS: envNum('BENCH_DURATION_SECONDS', quick ? 5 : 15),
  soakS: envNum('BENCH_SOAK_SECONDS', quick ? 40 : 300),
  connections: envNum('BENCH_CONNECTIONS', 50),
  loginConnections: envNum('BENCH_LOGIN_CONNECTIONS', 16),
  oidcConnections: envNum('BENCH_OIDC_CONNECTIONS', 16),
  users: envNum('BENCH_USERS', 50),
  redisDb: envNum('BENCH_REDIS_DB', 5),
  scale: FULL_SCALE as SeedCounts,
};
const only = opt('--only')
  ?.split(',')
  .map((s) => s.trim());
const wants = (id: string) => !only || only.includes(id);

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const resultsDir = join(REPO_ROOT, 'test/bench/results');
const runDir = join(tmpdir(), `auth-bench-${stamp}`);
mkdirSync(runDir, { recursive: true });
mkdirSync(resultsDir, { recursive: true });

const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
setLoadLog(log);
const redisUrl = `redis://127.0.0.1:6379/${S.redisDb}`;
const DB_EMPTY = 'bench_empty';
const DB_SCALE = 'bench_scale';
const DB_OIDC = 'bench_oidc';
const DB_SVC = 'bench_svc';
/**
 * The seeded template, named by the seed counts and by the schema of the build
 * under test (its number of migrations), so a schema change seeds a new one
 * instead of migrating a million-row copy at every start.
 */
function templateName(build: ServiceBuild): string {
  const migrations = readMigrationFiles({ migrationsFolder: join(build.dir, 'drizzle') }).length;
  return `bench_tpl_m${migrations}_${S.scale.users}_${S.scale.posts}_${S.scale.audit}`;
}

async function flushRedis(): Promise<void> {
  // Our own db index only (BENCH_REDIS_DB), never the service's or the tests' keys.
  const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  await r.flushdb();
  await r.quit();
}

// ---------------------------------------------------------------- recording

type Runs = Record<string, LoadFigures[]>;
const runs: Runs = {};
const record = (key: string, f: LoadFigures) => {
  (runs[key] ??= []).push(f);
  const bad = f.non2xx + f.errors + f.timeouts;
  log(
    `  ${key.padEnd(28)} ${f.rps.toFixed(0).padStart(7)} rps  p50 ${f.p50} ms  p99 ${f.p99} ms  RSS ${f.rssMb ?? '-'} MB  cpu svc ${f.cpu.servers} pg ${f.cpu.postgres} redis ${f.cpu.redis} gen ${f.cpu.generator}  foreign ${f.foreignCores}${
      (f.drainMs ?? 0) > 1_000 ? `  (backlog drained in ${f.drainMs} ms)` : ''
    }${bad ? `  !! non2xx ${f.non2xx} errors ${f.errors} timeouts ${f.timeouts} ${JSON.stringify(f.statusCodes)}` : ''}`,
  );
  return f;
};
const med = (key: string): LoadFigures | undefined => (runs[key]?.length ? medianRun(runs[key]!) : undefined);

type Row = {
  id: string;
  scenario: string;
  value: number | null;
  unit: 'ratio' | 'ms' | 'MB' | '%';
  target: string;
  pass: boolean | null;
  detail: string;
};
const rows: Row[] = [];
const extra: Record<string, unknown> = {};
const problems: string[] = [];

// ---------------------------------------------------------------- scenarios' loads

const spec = {
  ping: (p: Proc): LoadSpec => ({
    url: `${p.url}/ping`,
    connections: S.connections,
    durationS: S.durationS,
    warmupS: S.warmupS,
    target: p,
  }),
  me: (p: Proc, setup: Setup): LoadSpec => ({
    url: `${p.url}/users/me`,
    connections: S.connections,
    durationS: S.durationS,
    warmupS: S.warmupS,
    target: p,
    requests: rotating(setup.tokens, (t) => ({ method: 'GET', path: '/users/me', headers: { authorization: `Bearer ${t}` } })),
  }),
  posts: (p: Proc): LoadSpec => ({
    url: `${p.url}/posts`,
    connections: S.connections,
    durationS: S.durationS,
    warmupS: S.warmupS,
    target: p,
  }),
  logs: (p: Proc, setup: Setup, cursor: string | null): LoadSpec => ({
    url: `${p.url}/admin/logs?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    connections: S.connections,
    durationS: S.durationS,
    warmupS: S.warmupS,
    target: p,
    headers: { authorization: `Bearer ${setup.adminToken}` },
  }),
  login: (p: Proc, emails: string[], durationS = S.durationS): LoadSpec => ({
    url: `${p.url}/auth/login`,
    connections: S.loginConnections,
    durationS,
    warmupS: S.warmupS,
    target: p,
    requests: rotating(emails, (email) => ({
      method: 'POST',
      path: '/auth/login',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: SEED_PASSWORD }),
    })),
  }),
};

const SETUP = { posts: 100, auditRows: 1_100 };

/** Stop a service after reading its trouble counters from /metrics. */
async function stopService(p: Proc) {
  const c = await scrapeCounters(p.url, benchMetricsToken);
  const counters = (extra.counters ??= {}) as Record<string, unknown>;
  counters[p.name] = c;
  if (c) {
    log(
      `  ${p.name}: ${c.requests} requests, ${c.status5xx} 5xx, ${c.txRetries} tx retries, audit ${c.auditWritten} written/${c.auditDropped} dropped, ${c.storeDegraded} store degradations`,
    );
    const m = c.memory;
    log(
      `  ${p.name} memory (MB): RSS ${m.resident_memory}, V8 heap ${m.heap_size_used} used of ${m.heap_size_total}, external ${m.external_memory}; spaces ${Object.entries(
        m,
      )
        .filter(([k]) => k.startsWith('heap_space_total.'))
        .map(([k, v]) => `${k.slice(17)} ${v}`)
        .join(', ')}`,
    );
    if (c.status5xx) problems.push(`${p.name}: ${c.status5xx} responses with status 5xx (see ${p.logFile})`);
    if (c.auditDropped) problems.push(`${p.name}: ${c.auditDropped} audit entries dropped`);
    if (c.storeDegraded) problems.push(`${p.name}: ${c.storeDegraded} degraded store operations`);
  }
  const code = await p.stop();
  if (code !== 0) problems.push(`${p.name} exited with ${code} on SIGTERM (see ${p.logFile})`);
}

// ---------------------------------------------------------------- phases

async function phaseEmpty(build: ServiceBuild, baseline: Proc) {
  log(`empty database (${DB_EMPTY}), PostgreSQL + Redis db ${S.redisDb}`);
  await recreateDatabase(DB_EMPTY);
  await flushRedis();
  const on = await startService({ name: 'svc-empty', build, runDir, databaseUrl: urlFor(DB_EMPTY), redisUrl });
  const setup = await setUp(on.url, { users: S.users, ...SETUP });
  extra.setupEmpty = { users: setup.tokens.length, posts: setup.postIds.length, deepCursor: !!setup.deepCursor };
  // Before scenarios 1 and 2 fill the audit log: this is the "empty database" figure.
  // Each round measures the bare /ping beside them, so the machine's speed at
  // that moment divides out (see pairedRatio).
  if (wants('5')) {
    for (let r = 0; r < S.rounds; r++) {
      record('baseline.ping.logs', await load(spec.ping(baseline)));
      record('logs.first.empty', await load(spec.logs(on, setup, null)));
      record('logs.deep.empty', await load(spec.logs(on, setup, setup.deepCursor)));
    }
  }
  // The first /posts page is served from the version-checked in-process cache;
  // page 2 (through the cursor) always comes from the database: informational.
  const postsPage2 = wants('2')
    ? `${on.url}/posts?cursor=${encodeURIComponent(((await (await fetch(`${on.url}/posts`)).json()) as { nextCursor: string }).nextCursor)}`
    : undefined;
  const off = wants('6')
    ? await startService({ name: 'svc-empty-auditoff', build, runDir, databaseUrl: urlFor(DB_EMPTY), redisUrl, audit: false })
    : undefined;
  for (let r = 0; r < S.rounds; r++) {
    log(`round ${r + 1}/${S.rounds}`);
    record('baseline.ping', await load(spec.ping(baseline)));
    // Informational: the service's cheapest route (secure headers, CORS, request id; no API chain).
    if (wants('1') || wants('2')) record('info.healthz', await load({ ...spec.ping(on), url: `${on.url}/healthz` }));
    if (wants('1') || wants('5') || wants('6')) record('s1.me', await load(spec.me(on, setup)));
    if (off) record('s1.me.auditOff', await load(spec.me(off, setup)));
    if (wants('2') || wants('5')) record('s2.posts', await load(spec.posts(on)));
    if (postsPage2) record('info.posts.page2', await load({ ...spec.posts(on), url: postsPage2 }));
  }
  if (off) await stopService(off);
  if (wants('8')) await phaseFreshTokens(on);
  return { on, setup };
}

/**
 * Scenario 8: GET /users/me where every request carries an access token the
 * service has not verified before (10,000 users, 3 tokens each, more than the
 * verified-token cache holds), against a bare server verifying the same EdDSA
 * tokens: what is left of the service's cost once signature checks dominate.
 */
async function phaseFreshTokens(on: Proc) {
  log('fresh tokens: GET /users/me, every token new to the service, vs raw EdDSA verify');
  const tokens = await freshTokens({ databaseUrl: urlFor(DB_EMPTY), jwk: benchJwk, users: 10_000, perUser: 3 });
  log(`  ${tokens.length} tokens signed; warming the 10,000 users' state with one request each`);
  // Every user once, with their first token, so their session, roles and profile are in the store
  // (the steady state of scenario 1); the load then uses only tokens never sent before.
  const users = 10_000;
  const warm = tokens.slice(0, users);
  let next = 0;
  await Promise.all(
    Array.from({ length: S.connections }, async () => {
      while (next < warm.length) {
        const t = warm[next++]!;
        const res = await fetch(`${on.url}/users/me`, { headers: { authorization: `Bearer ${t}` } });
        if (res.status !== 200) throw new Error(`warming /users/me: ${res.status}`);
        await res.arrayBuffer();
      }
    }),
  );
  const unseen = tokens.slice(users);
  const raw = await startBenchServer('jwt-verify-raw', 'jwt-verify-server.ts', runDir, '/healthz', { JWT_PRIVATE_KEY: benchJwk });
  const fresh = (p: Proc): LoadSpec => ({
    url: `${p.url}/users/me`,
    connections: S.connections,
    durationS: S.durationS,
    warmupS: S.warmupS,
    target: p,
    requests: rotating(unseen, (t) => ({ method: 'GET', path: '/users/me', headers: { authorization: `Bearer ${t}` } })),
  });
  try {
    for (let r = 0; r < S.rounds; r++) {
      record('jwt.verify.raw', await load(fresh(raw)));
      record('s8.me.fresh', await load(fresh(on)));
    }
  } finally {
    await raw.stop();
  }
}

async function phaseLogin(on: Proc, setup: Setup) {
  log('login throughput vs raw argon2id verify (same parameters, same connections)');
  const argon = await startBenchServer('argon2-raw', 'argon2-server.ts', runDir, '/healthz', { BENCH_PASSWORD: SEED_PASSWORD });
  try {
    for (let r = 0; r < S.rounds; r++) {
      log(`round ${r + 1}/${S.rounds}`);
      record('argon2.raw', await load(spec.login(argon, setup.emails)));
      record('s3.login', await load(spec.login(on, setup.emails)));
    }
  } finally {
    extra.argon2RawRssMb = argon.rssMb();
    await argon.stop();
  }
}

async function phaseHealthz(on: Proc, setup: Setup) {
  log('GET /healthz latency, idle and during a login flood');
  const probe = (durationS: number): LoadSpec => ({ url: `${on.url}/healthz`, connections: 2, overallRate: 50, durationS, target: on });
  record('healthz.idle', await load({ ...probe(Math.min(S.durationS, 10)), warmupS: 1 }));
  // The flood runs a little longer than the probe, so the probe sees only the flood.
  await waitForQuiet(0.15, 180_000, log);
  const flood = startLoad({ ...spec.login(on, setup.emails, S.durationS + 4) });
  await new Promise((r) => setTimeout(r, 2_000));
  const during = await load({ ...probe(S.durationS), retries: 0 });
  const floodFigures = await flood.done;
  record('s7.healthz.duringLoginFlood', during);
  record('s7.loginFlood', floodFigures);
}

async function phaseSoak(build: ServiceBuild, setup: Setup) {
  log(`soak: ${S.soakS} s of mixed load on a fresh process, RSS sampled every second`);
  const svc = await startService({ name: 'svc-soak', build, runDir, databaseUrl: urlFor(DB_EMPTY), redisUrl });
  try {
    const rss = sampleRss(svc);
    let i = 0;
    const t = setup.tokens;
    const auth = () => ({ authorization: `Bearer ${t[i++ % t.length]}` });
    const postId = () => setup.postIds[i % setup.postIds.length];
    // Per connection, a cycle of reads and some writes, every user's token in turn.
    const mix = [
      { setupRequest: (req: object) => ({ ...req, method: 'GET', path: '/users/me', headers: auth() }) },
      { setupRequest: (req: object) => ({ ...req, method: 'GET', path: '/posts', headers: {} }) },
      { setupRequest: (req: object) => ({ ...req, method: 'GET', path: `/posts/${postId()}`, headers: auth() }) },
      { setupRequest: (req: object) => ({ ...req, method: 'GET', path: '/users/me', headers: auth() }) },
      { setupRequest: (req: object) => ({ ...req, method: 'GET', path: '/posts?limit=50', headers: auth() }) },
      {
        setupRequest: (req: object) => ({
          ...req,
          method: 'POST',
          path: '/posts',
          headers: { ...auth(), 'content-type': 'application/json' },
          body: JSON.stringify({ title: `Soak ${i}`, body: 'Soak post body.' }),
        }),
      },
    ];
    // New sessions all along: a trickle of logins (argon2 bounded) beside the mix.
    await waitForQuiet(0.15, 180_000, log);
    const logins = startLoad({ ...spec.login(svc, setup.emails, S.soakS), connections: 2, overallRate: 4 });
    const mixed = await load({ url: svc.url, connections: S.connections, durationS: S.soakS, requests: mix, target: svc, retries: 0 });
    const loginFigures = await logins.done;
    const samples = rss.stop();
    record('s4.soak.mixed', mixed);
    record('s4.soak.logins', loginFigures);
    extra.soakRss = samples;
  } finally {
    await stopService(svc);
  }
}

async function ensureTemplate(build: ServiceBuild): Promise<string> {
  const DB_TEMPLATE = templateName(build);
  if ((await databaseExists(DB_TEMPLATE)) && !flag('--reseed')) {
    log(`scale template ${DB_TEMPLATE} exists (pass --reseed to rebuild it)`);
    return DB_TEMPLATE;
  }
  log(`building the scale template ${DB_TEMPLATE}: schema from the service, then the seeding script`);
  await recreateDatabase(DB_TEMPLATE);
  await flushRedis();
  const svc = await startService({ name: 'svc-template', build, runDir, databaseUrl: urlFor(DB_TEMPLATE), redisUrl });
  await svc.stop();
  const started = Date.now();
  await seed(urlFor(DB_TEMPLATE), S.scale, log);
  extra.seedSeconds = Math.round((Date.now() - started) / 1000);
  return DB_TEMPLATE;
}

async function phaseScale(build: ServiceBuild, baseline: Proc) {
  const DB_TEMPLATE = await ensureTemplate(build);
  log(`scale database (${DB_SCALE}, a copy of ${DB_TEMPLATE})`);
  await recreateDatabase(DB_SCALE, DB_TEMPLATE);
  await flushRedis();
  const svc = await startService({ name: 'svc-scale', build, runDir, databaseUrl: urlFor(DB_SCALE), redisUrl });
  try {
    const setup = await setUp(svc.url, { users: S.users, ...SETUP });
    extra.scaleCounts = await tableCounts(DB_SCALE);
    log(`  rows: ${JSON.stringify(extra.scaleCounts)}`);
    for (let r = 0; r < S.rounds; r++) {
      log(`round ${r + 1}/${S.rounds}`);
      record('baseline.ping.scale', await load(spec.ping(baseline)));
      record('logs.first.scale', await load(spec.logs(svc, setup, null)));
      record('logs.deep.scale', await load(spec.logs(svc, setup, setup.deepCursor)));
      record('s1.me.scale', await load(spec.me(svc, setup)));
      record('s2.posts.scale', await load(spec.posts(svc)));
    }
  } finally {
    await stopService(svc);
  }
}

async function phaseEmbedded(build: ServiceBuild, baseline: Proc) {
  log('embedded mode (PGlite under DATA_DIR, in-process store): informational');
  const svc = await startService({ name: 'svc-embedded', build, runDir });
  try {
    const setup = await setUp(svc.url, { users: Math.min(S.users, 10), posts: SETUP.posts, auditRows: 0 });
    for (let r = 0; r < S.rounds; r++) {
      record('baseline.ping.embedded', await load(spec.ping(baseline)));
      record('embedded.s1.me', await load(spec.me(svc, setup)));
      record('embedded.s2.posts', await load(spec.posts(svc)));
    }
  } finally {
    await stopService(svc);
  }
}

/**
 * Scenario 9 (informational): scenario 1 served by the Bun and Deno entries
 * (from source, as `npm run start:bun|deno` runs them) over the same database
 * and Redis, measured round by round beside Node's compiled service.
 */
async function phaseRuntimes(build: ServiceBuild, on: Proc, setup: Setup, baseline: Proc) {
  for (const runtime of ['bun', 'deno'] as const) {
    log(`scenario 1 on ${runtime}`);
    const svc = await startService({ name: `svc-${runtime}`, build, runDir, databaseUrl: urlFor(DB_EMPTY), redisUrl, runtime });
    try {
      for (let r = 0; r < S.rounds; r++) {
        record(`baseline.ping.${runtime}`, await load(spec.ping(baseline)));
        record(`s9.me.node.${runtime}`, await load(spec.me(on, setup)));
        record(`s9.me.${runtime}`, await load(spec.me(svc, setup)));
      }
    } finally {
      await stopService(svc);
    }
  }
}

/**
 * The OpenID provider (test/bench/oidc.ts): the code flow of a signed-in user
 * with a stored grant (authorize with the browser-session cookie -> token with
 * code + PKCE -> userinfo) and the refresh grant, against oidc-provider (RS256
 * both) in its own process, round by round. Our side runs like every other
 * scenario's service (compiled, production, https PUBLIC_URL so the cookie is
 * __Host-, audit on, the limiter counting every request at the bench's
 * RATE_LIMIT_REQUESTS) on its own database, set up through the API.
 */
async function phaseOidc(build: ServiceBuild, cpuProfDir?: string) {
  log(`OpenID provider vs oidc-provider: code flow and refresh grant (${S.oidcConnections} connections), database ${DB_OIDC}`);
  await recreateDatabase(DB_OIDC);
  await flushRedis();
  const svc = await startService({
    name: cpuProfDir ? 'prof-oidc' : 'svc-oidc',
    build,
    runDir,
    databaseUrl: urlFor(DB_OIDC),
    redisUrl,
    ...(cpuProfDir ? { cpuProfDir } : {}),
  });
  let yard: Awaited<ReturnType<typeof startYardstick>> | undefined;
  try {
    yard = await startYardstick(runDir);
    const ours = await oursTarget({ base: svc.url, admin: ADMIN, proc: svc });
    const scenarios = ['flow', 'refresh'] as const;
    const targets = [
      await prepareOidc(yard, [...scenarios], S.oidcConnections),
      await prepareOidc(ours, [...scenarios], S.oidcConnections),
    ];
    const loadOpts = { connections: S.oidcConnections, durationS: S.durationS, warmupS: S.warmupS };
    for (let r = 0; r < S.rounds; r++) {
      log(`round ${r + 1}/${S.rounds}`);
      for (const scenario of scenarios)
        for (const p of targets) {
          if (scenario === 'refresh') await p.refresh.reseedIfUsed();
          record(`oidc.${scenario}.${p.t.name}`, withoutRedirects(await load(oidcLoadSpec(p, scenario, loadOpts))));
        }
    }
    for (const p of targets) {
      extra[`oidcFailures.${p.t.name}`] = p.fails;
      if (failureCount(p.fails)) problems.push(`OpenID ${p.t.name}: failed steps ${JSON.stringify(p.fails)}`);
    }
  } finally {
    await yard?.proc?.stop();
    await stopService(svc);
  }
}

/**
 * Service clients (test/bench/service-clients.ts): the client_credentials grant
 * and introspection against oidc-provider (its clientCredentials and
 * introspection features, RS256) in its own process, and a service client's
 * API request against the same request with a user's token holding the same
 * role, round by round. Ours runs like every other scenario's service on its
 * own database, set up through the API. `--only cc,introspect,svcapi` picks
 * scenarios; `svc` (or no --only) runs the three.
 */
async function phaseServiceClients(build: ServiceBuild, scenarios: ServiceClientScenario[]) {
  log(`service clients: ${scenarios.join(', ')}, database ${DB_SVC}`);
  await recreateDatabase(DB_SVC);
  await flushRedis();
  const svc = await startService({ name: 'svc-clients', build, runDir, databaseUrl: urlFor(DB_SVC), redisUrl });
  let yard: Awaited<ReturnType<typeof startCcYardstick>> | undefined;
  try {
    const audience = extraServiceEnv().JWT_AUDIENCE ?? 'auth-system';
    const ours = await oursCcTarget({ base: svc.url, admin: ADMIN, audience, proc: svc });
    yard = await startCcYardstick(runDir);
    const fails = { ours: noCcFailures(), yardstick: noCcFailures() };
    const opts = { connections: S.oidcConnections, durationS: S.durationS, warmupS: S.warmupS };
    const api = { connections: S.connections, durationS: S.durationS, warmupS: S.warmupS };
    for (let r = 0; r < S.rounds; r++) {
      log(`round ${r + 1}/${S.rounds}`);
      for (const scenario of scenarios) {
        if (scenario === 'svcapi') {
          record('svc.api.client', await load(ccLoadSpec(svc.url, apiRequests(ours.clientToken, fails.ours), api, svc)));
          record('svc.api.user', await load(ccLoadSpec(svc.url, apiRequests(ours.userToken, fails.ours), api, svc)));
          continue;
        }
        for (const t of [yard, ours.t]) {
          const requests = scenario === 'cc' ? ccRequests(t, fails[t.name as 'ours']) : introspectRequests(t, fails[t.name as 'ours']);
          record(`svc.${scenario}.${t.name}`, await load(ccLoadSpec(t.base, requests, opts, t.proc)));
        }
      }
    }
    for (const [name, f] of Object.entries(fails)) {
      extra[`serviceClientFailures.${name}`] = f;
      if (f.cc + f.introspect + f.svcapi) problems.push(`service clients ${name}: failed steps ${JSON.stringify(f)}`);
    }
  } finally {
    await yard?.proc?.stop();
    await stopService(svc);
  }
}

// ---------------------------------------------------------------- table

/**
 * A ratio of two figures measured round by round: the median of the per-round
 * ratios a[i]/b[i], each pair measured within a minute, so that the machine's
 * speed, which drifts by tens of percent over a run on a shared host, divides
 * out. Falls back to the ratio of the medians when the rounds do not pair up.
 */
function pairedRatio(a: string, b: string): { value: number; perRound: number[] } | null {
  const ra = runs[a];
  const rb = runs[b];
  if (!ra?.length || !rb?.length) return null;
  if (ra.length !== rb.length) return { value: medianRun(ra).rps / medianRun(rb).rps, perRound: [] };
  const perRound = ra.map((f, i) => f.rps / rb[i]!.rps);
  const sorted = [...perRound].sort((x, y) => x - y);
  const mid = (sorted.length - 1) / 2;
  return { value: (sorted[Math.floor(mid)]! + sorted[Math.ceil(mid)]!) / 2, perRound };
}

function buildTable() {
  const round3 = (v: number) => Math.round(v * 1000) / 1000;
  const clean = (...fs: (LoadFigures | undefined)[]) => fs.every((f) => !f || f.non2xx + f.errors + f.timeouts === 0);
  const noise = (...fs: (LoadFigures | undefined)[]) => (fs.some((f) => f && f.foreignCores > NOISY_CORES) ? ' (noisy machine)' : '');
  const allRuns = (...keys: string[]) => keys.flatMap((k) => runs[k] ?? []);
  const push = (id: string, scenario: string, v: number | null, min: number, target: string, keys: string[], detail: string) => {
    const ok = v !== null && v >= min && clean(...allRuns(...keys));
    rows.push({
      id,
      scenario,
      value: v === null ? null : round3(v),
      unit: 'ratio',
      target,
      pass: ok,
      detail: `${detail}${clean(...allRuns(...keys)) ? '' : ' (errors!)'}${noise(...allRuns(...keys))}`,
    });
  };
  const rounds = (r: number[]) => (r.length > 1 ? `; per round ${r.map((x) => x.toFixed(2)).join(' / ')}` : '');
  /** a against b, both measured in every round of the same phase. */
  const addRatio = (id: string, scenario: string, a: string, b: string, min: number, target: string) => {
    const p = pairedRatio(a, b);
    const fa = med(a);
    const fb = med(b);
    if (!p || !fa || !fb) return;
    push(id, scenario, p.value, min, target, [a, b], `${fa.rps.toFixed(0)} vs ${fb.rps.toFixed(0)} rps${rounds(p.perRound)}`);
  };
  /**
   * a against b when they were measured in different phases (minutes apart):
   * each is first taken relative to the /ping measured in its own rounds.
   */
  const addNormalized = (id: string, scenario: string, a: [string, string], b: [string, string], min: number, target: string) => {
    const pa = pairedRatio(...a);
    const pb = pairedRatio(...b);
    const fa = med(a[0]);
    const fb = med(b[0]);
    if (!pa || !pb || !fa || !fb) return;
    push(
      id,
      scenario,
      pa.value / pb.value,
      min,
      target,
      [...a, ...b],
      `${fa.rps.toFixed(0)} vs ${fb.rps.toFixed(0)} rps; vs /ping measured beside each: ${pa.value.toFixed(3)} vs ${pb.value.toFixed(3)}`,
    );
  };
  addRatio('1', 'GET /users/me vs bare Hono /ping', 's1.me', 'baseline.ping', 0.5, '≥ 0.50');
  addRatio('2', 'GET /posts (guest) vs bare Hono /ping', 's2.posts', 'baseline.ping', 0.3, '≥ 0.30');
  addRatio('3', 'POST /auth/login vs raw argon2id verify', 's3.login', 'argon2.raw', 0.85, '≥ 0.85');
  const soak = extra.soakRss as { t: number; rssMb: number }[] | undefined;
  if (soak?.length) {
    const at = (t: number) => soak.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best), soak[0]!);
    const end = soak.at(-1)!;
    const r60 = at(Math.min(60, end.t));
    const first = at(end.t / 5); // "minute 1" of a five-minute soak
    const growth = Math.round(((end.rssMb - first.rssMb) / first.rssMb) * 1000) / 10;
    const mixed = med('s4.soak.mixed');
    rows.push({
      id: '4a',
      scenario: `RSS after ${r60.t.toFixed(0)} s of mixed load`,
      value: r60.rssMb,
      unit: 'MB',
      target: '≤ 200 MB',
      pass: r60.rssMb <= 200,
      detail: `max ${Math.max(...soak.map((s) => s.rssMb))} MB; mixed ${mixed?.rps.toFixed(0)} rps${clean(mixed) ? '' : ' (errors!)'}`,
    });
    rows.push({
      id: '4b',
      scenario: `RSS growth ${first.t.toFixed(0)} s → ${end.t.toFixed(0)} s`,
      value: growth,
      unit: '%',
      target: '≤ 10%',
      pass: growth <= 10,
      detail: `${first.rssMb} → ${end.rssMb} MB${end.t < 290 ? ' (short soak: set BENCH_SOAK_SECONDS=300 for minute 1 → 5)' : ''}`,
    });
  }
  const scale = (key: string): [string, string] => [key, 'baseline.ping.scale'];
  addNormalized('5a', 'scale: GET /users/me, 100k/100k/1M vs empty', scale('s1.me.scale'), ['s1.me', 'baseline.ping'], 0.85, '≥ 0.85');
  addNormalized('5b', 'scale: GET /posts, vs empty', scale('s2.posts.scale'), ['s2.posts', 'baseline.ping'], 0.85, '≥ 0.85');
  addNormalized(
    '5c',
    'scale: GET /admin/logs first page, vs empty',
    scale('logs.first.scale'),
    ['logs.first.empty', 'baseline.ping.logs'],
    0.85,
    '≥ 0.85',
  );
  addNormalized(
    '5d',
    'scale: GET /admin/logs page 50, vs empty',
    scale('logs.deep.scale'),
    ['logs.deep.empty', 'baseline.ping.logs'],
    0.85,
    '≥ 0.85',
  );
  addRatio('6', 'GET /users/me audit log on vs off', 's1.me', 's1.me.auditOff', 0.9, '≥ 0.90');
  addRatio(
    '8',
    'GET /users/me, every token new (20k unseen tokens of 10k warm users) vs raw EdDSA verify',
    's8.me.fresh',
    'jwt.verify.raw',
    0.8,
    '≥ 0.80',
  );
  const hz = med('s7.healthz.duringLoginFlood');
  const flood = med('s7.loginFlood');
  if (hz) {
    rows.push({
      id: '7',
      scenario: 'GET /healthz p99 during a login flood',
      value: hz.p99,
      unit: 'ms',
      target: '< 50 ms',
      pass: hz.p99 < 50 && clean(hz),
      detail: `flood ${flood?.rps.toFixed(0)} logins/s; idle p99 ${med('healthz.idle')?.p99 ?? '-'} ms${noise(hz, flood)}`,
    });
  }
  addRatio(
    'oidc1',
    'OpenID code flow (authorize with session + stored grant, token with PKCE, userinfo) vs oidc-provider',
    'oidc.flow.ours',
    'oidc.flow.yardstick',
    0,
    '—',
  );
  addRatio('oidc2', 'OpenID refresh grant (rotating) vs oidc-provider', 'oidc.refresh.ours', 'oidc.refresh.yardstick', 0, '—');
  addRatio('svc1', 'client_credentials grant vs oidc-provider (RS256 JWT both)', 'svc.cc.ours', 'svc.cc.yardstick', 0, '—');
  addRatio(
    'svc2',
    'introspection (RFC 7662) of a live access token vs oidc-provider',
    'svc.introspect.ours',
    'svc.introspect.yardstick',
    0,
    '—',
  );
  addRatio(
    'svc3',
    'GET /users?limit=1: service client token vs a user token of the same role',
    'svc.api.client',
    'svc.api.user',
    0.95,
    '≥ 0.95',
  );
  addRatio('info', 'GET /healthz (no API chain) vs /ping (info)', 'info.healthz', 'baseline.ping', 0, '—');
  addRatio(
    'info2',
    'GET /posts page 2 (cursor: never cached, from the database) vs /ping (info)',
    'info.posts.page2',
    'baseline.ping',
    0,
    '—',
  );
  addRatio('emb1', 'embedded: GET /users/me vs /ping (info)', 'embedded.s1.me', 'baseline.ping.embedded', 0, '—');
  addRatio('emb2', 'embedded: GET /posts vs /ping (info)', 'embedded.s2.posts', 'baseline.ping.embedded', 0, '—');
  addRatio('9b', 'Bun: GET /users/me vs the same on Node (info)', 's9.me.bun', 's9.me.node.bun', 0, '—');
  addRatio('9d', 'Deno: GET /users/me vs the same on Node (info)', 's9.me.deno', 's9.me.node.deno', 0, '—');
  for (const r of rows)
    if (
      r.id.startsWith('emb') ||
      r.id.startsWith('info') ||
      r.id.startsWith('9') ||
      r.id.startsWith('oidc') ||
      r.id === 'svc1' ||
      r.id === 'svc2'
    )
      r.pass = null;
}

function printTable() {
  const fmt = (r: Row) =>
    r.value === null ? '-' : r.unit === 'ratio' ? r.value.toFixed(2) : r.unit === '%' ? `${r.value}%` : `${r.value} ${r.unit}`;
  const lines = [
    '| # | scenario | result | target | pass | figures |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) => `| ${r.id} | ${r.scenario} | ${fmt(r)} | ${r.target} | ${r.pass === null ? 'info' : r.pass ? 'PASS' : 'FAIL'} | ${r.detail} |`,
    ),
  ];
  const raw = [
    '| run (median of rounds) | rps | p50 ms | p99 ms | RSS MB | non-2xx/errors | CPU cores: server / PostgreSQL / Redis / generator | foreign CPU |',
    '|---|---|---|---|---|---|---|---|',
    ...Object.keys(runs).map((k) => {
      const f = med(k)!;
      const noisy = f.foreignCores > NOISY_CORES ? ' (noisy)' : '';
      const c = f.cpu;
      return `| ${k} | ${f.rps.toFixed(0)} | ${f.p50} | ${f.p99} | ${f.rssMb ?? '-'} | ${f.non2xx}/${f.errors + f.timeouts} | ${c.servers} / ${c.postgres} / ${c.redis} / ${c.generator} | ${f.foreignCores}${noisy} |`;
    }),
  ];
  console.log(`\n${lines.join('\n')}\n\n${raw.join('\n')}\n`);
  return { table: lines.join('\n'), raw: raw.join('\n') };
}

// ---------------------------------------------------------------- profile mode

async function profileMode(build: ServiceBuild) {
  const profDir = join(resultsDir, `profile-${stamp}`);
  mkdirSync(profDir, { recursive: true });
  log(`profile mode: node --cpu-prof on the service under scenarios 1, 2 and 3 (${S.durationS} s each) → ${profDir}`);
  const summaries: Record<string, ProfileSummary> = {};
  if (only?.includes('oidc')) {
    // Both OpenID scenarios (setup included) on one profiled service process.
    await phaseOidc(build, profDir);
    const s = summariseProfile(join(profDir, 'prof-oidc.cpuprofile'), 40);
    summaries.oidc = s;
    printProfile(s, console.log);
    writeFileSync(join(profDir, 'oidc.summary.json'), JSON.stringify(s, null, 2));
    if (only.every((o) => o === 'oidc')) return summaries;
  }
  await recreateDatabase(DB_EMPTY);
  await flushRedis();
  // The setup (argon2 hashing, registration) runs on an unprofiled instance.
  const helper = await startService({ name: 'svc-setup', build, runDir, databaseUrl: urlFor(DB_EMPTY), redisUrl });
  const setup = await setUp(helper.url, { users: S.users, posts: SETUP.posts, auditRows: 0 });
  await helper.stop();
  for (const [name, mk, audit] of [
    ['s1-users-me', (p: Proc) => spec.me(p, setup), true],
    ['s2-posts', (p: Proc) => spec.posts(p), true],
    ['s1-users-me-audit-off', (p: Proc) => spec.me(p, setup), false],
    ['s3-login', (p: Proc) => spec.login(p, setup.emails), true],
  ] as const) {
    if (only && !only.some((o) => name.startsWith(`s${o}-`) || name === o)) continue;
    const svc = await startService({
      name: `prof-${name}`,
      build,
      runDir,
      databaseUrl: urlFor(DB_EMPTY),
      redisUrl,
      cpuProfDir: profDir,
      audit,
    });
    record(`profile.${name}`, await load(mk(svc)));
    await svc.stop();
    const file = readdirSync(profDir).find((f) => f === `prof-${name}.cpuprofile`);
    if (!file) {
      problems.push(`no profile written for ${name}`);
      continue;
    }
    const s = summariseProfile(join(profDir, file), 40);
    summaries[name] = s;
    printProfile(s, console.log);
    writeFileSync(join(profDir, `${name}.summary.json`), JSON.stringify(s, null, 2));
  }
  return summaries;
}

// ---------------------------------------------------------------- main

function scanLogs(): Record<string, { warn: number; error: number; samples: string[] }> {
  const out: Record<string, { warn: number; error: number; samples: string[] }> = {};
  for (const f of readdirSync(runDir).filter((f) => f.endsWith('.log'))) {
    const text = readFileSync(join(runDir, f), 'utf8');
    const e = { warn: 0, error: 0, samples: [] as string[] };
    for (const line of text.split('\n')) {
      const m = /"level":(\d+)/.exec(line);
      const level = m ? Number(m[1]) : /error|exception/i.test(line) ? 50 : 0;
      if (level >= 50) e.error++;
      else if (level >= 40) e.warn++;
      else continue;
      if (e.samples.length < 5) e.samples.push(line.slice(0, 400));
    }
    if (e.warn || e.error) out[f] = e;
  }
  return out;
}

async function main() {
  const started = Date.now();
  const build = prepareService({ ...(opt('--ref') ? { ref: opt('--ref')! } : {}), tsx: flag('--tsx'), build: !flag('--no-build'), log });
  log(
    `service: ${build.source} (${build.kind}) in ${build.dir}, node ${imageNodeFlags(build.dir).join(' ')} (the Dockerfile's CMD); logs in ${runDir}`,
  );
  if (Object.keys(extraServiceEnv()).length) log(`extra service environment: ${JSON.stringify(extraServiceEnv())}`);
  const result: Record<string, unknown> = {
    startedAt: new Date(started).toISOString(),
    mode: flag('--profile') ? 'profile' : quick ? 'quick' : 'full',
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    service: {
      source: build.source,
      kind: build.kind,
      buildOk: build.buildOk,
      nodeFlags: imageNodeFlags(build.dir),
      extraEnv: extraServiceEnv(),
    },
    settings: S,
    only: only ?? null,
    logsDir: runDir,
  };
  if (flag('--profile')) {
    result.profiles = await profileMode(build);
  } else {
    const baseline = await startBenchServer('baseline', 'baseline.ts', runDir, '/ping');
    try {
      const needEmpty = ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'embedded'].some(wants);
      if (needEmpty) {
        const { on, setup } = await phaseEmpty(build, baseline);
        try {
          if (wants('9')) await phaseRuntimes(build, on, setup, baseline);
          if (wants('3')) await phaseLogin(on, setup);
          if (wants('7')) await phaseHealthz(on, setup);
        } finally {
          await stopService(on);
        }
        if (wants('4')) await phaseSoak(build, setup);
      }
      if (wants('5')) await phaseScale(build, baseline);
      if (wants('embedded') && (!quick || only)) await phaseEmbedded(build, baseline);
      if (wants('oidc')) await phaseOidc(build);
      const svcScenarios = SERVICE_CLIENT_SCENARIOS.filter((id) => wants('svc') || only?.includes(id));
      if (svcScenarios.length) await phaseServiceClients(build, svcScenarios);
    } finally {
      await baseline.stop();
    }
    buildTable();
  }
  const printed = printTable();
  const logProblems = scanLogs();
  if (Object.keys(logProblems).length) {
    console.log('warnings/errors in the servers’ logs:');
    for (const [f, e] of Object.entries(logProblems))
      console.log(`  ${f}: ${e.error} error(s), ${e.warn} warning(s)\n    ${e.samples.join('\n    ')}`);
  }
  for (const p of problems) console.log(`problem: ${p}`);
  Object.assign(result, {
    rows,
    runs,
    medians: Object.fromEntries(Object.keys(runs).map((k) => [k, med(k)])),
    extra,
    logProblems,
    problems,
    ...printed,
  });
  result.seconds = Math.round((Date.now() - started) / 1000);
  const out = join(resultsDir, `${stamp}.json`);
  writeFileSync(out, JSON.stringify(result, null, 2));
  log(`results: ${out} (${result.seconds} s)`);
  const failed = rows.filter((r) => r.pass === false).length;
  log(failed ? `${failed} target(s) missed` : 'every target met');
}

try {
  await main();
} finally {
  await closeMeter();
}
