// The OpenID provider's bench: what a relying party costs the provider, against
// a yardstick measured in the same run on the same machine (oidc-provider v9,
// the certified Node provider, RS256, in-memory adapter, one client, in its own
// process: oidc-provider-server.ts). Two scenarios, the same for both providers:
//
//   flow     the code flow of a signed-in user whose consent is stored: GET the
//            authorization endpoint with the browser session cookie -> the code
//            in the redirect -> POST the token endpoint (code + PKCE S256, client
//            secret) -> GET userinfo with the access token. Each autocannon
//            connection loops the three requests; a flow is three requests.
//   refresh  the refresh grant on rotating chains (each answer's refresh_token is
//            its chain's next request), seeded by code flows with offline_access,
//            two chains per connection.
//
// Run (README.md, "The OpenID provider"):
//   npx tsx test/bench/oidc.ts [--quick] [--only flow,refresh]            the yardstick alone
//   npx tsx test/bench/oidc.ts --issuer URL --client-id ID --client-secret S \
//       --redirect-uri URI --cookie 'name=value' [--issuer-pid PID] [--offline-params 'prompt=consent']
//       [--consent-button REGEX] [--scope 'openid email profile']
//                                                                          ours beside it, with ratios
//   npx tsx test/bench/oidc.ts --service http://127.0.0.1:3000 [--public-url URL (default: discovery's issuer)] [--issuer-pid PID]
//       [--admin-email E --admin-password P]            ours, set up through its API (oursTarget), beside it
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Request } from 'autocannon';
import { loginAtPeer, parseForms, pkcePair, UserAgent } from '../helpers/oidc-peers.js';
import { type LoadFigures, type LoadSpec, load, median, setLoadLog } from './lib/load.js';
import { closeMeter } from './lib/machine.js';
import { type Proc, rssMbOf } from './lib/proc.js';
import { ADMIN, REPO_ROOT, startBenchServer } from './lib/service.js';

/** A provider to measure, and a signed-in browser session at it whose consent for `scope` is stored. */
export type OidcTarget = {
  name: string;
  issuer: string;
  /** Where to send the requests when not the issuer itself (a service whose PUBLIC_URL is not where it listens). */
  base?: string;
  clientId: string;
  /** Omitted for a public client (client_id in the body, PKCE only). */
  clientSecret?: string;
  /** A redirect URI registered for the client; never requested. */
  redirectUri: string;
  /** The Cookie header of the browser session at the issuer. */
  cookie: string;
  /** Default "openid email profile". */
  scope?: string;
  /** Extra authorization parameters for the flows that seed refresh tokens (oidc-provider keeps offline_access only with prompt=consent). */
  offlineParams?: Record<string, string>;
  /** The consent page's submit button, when one shows while seeding (when no button matches: the page's first form). */
  consentButton?: RegExp;
  /** The provider's process, when the bench started it (its RSS is reported). */
  proc?: Proc;
};

export type OidcEndpoints = { authorization: URL; token: URL; userinfo: URL };

/** Failures seen by the scenarios' response handlers (warm-up included): a failed step breaks a flow or a chain. */
export type OidcFailures = Record<'authorize' | 'token' | 'userinfo' | 'refresh', number> & { last?: string };
export const noFailures = (): OidcFailures => ({ authorize: 0, token: 0, userinfo: 0, refresh: 0 });

/** The endpoints from the discovery document, moved onto `base` when given. */
export async function discover(issuer: string, base = issuer): Promise<OidcEndpoints> {
  const res = await fetch(`${base}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`${base}: discovery answered ${res.status}`);
  const d = (await res.json()) as Record<string, string>;
  if (d.issuer !== issuer) throw new Error(`${base}: the discovery document's issuer is ${d.issuer}, not ${issuer}`);
  const origins = [new URL(issuer).origin, new URL(base).origin];
  const at = (name: string) => {
    const u = new URL(d[name]!);
    if (!origins.includes(u.origin)) throw new Error(`${name} ${u.href} is not on the issuer's origin`);
    return new URL(u.pathname + u.search, base);
  };
  return { authorization: at('authorization_endpoint'), token: at('token_endpoint'), userinfo: at('userinfo_endpoint') };
}

const headerOf = (headers: Record<string, string | string[]> | undefined, name: string): string | undefined => {
  for (const [k, v] of Object.entries(headers ?? {})) if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  return undefined;
};

function clientAuth(t: OidcTarget): { headers: Record<string, string>; body: Record<string, string> } {
  if (!t.clientSecret) return { headers: {}, body: { client_id: t.clientId } };
  const basic = Buffer.from(`${encodeURIComponent(t.clientId)}:${encodeURIComponent(t.clientSecret)}`).toString('base64');
  return { headers: { authorization: `Basic ${basic}` }, body: {} };
}

/** The three requests of the code flow, looped by each connection. */
export async function codeFlowRequests(t: OidcTarget, ep: OidcEndpoints, fails: OidcFailures): Promise<Request[]> {
  const { verifier, challenge } = await pkcePair();
  const authorize = new URL(ep.authorization);
  authorize.search = new URLSearchParams({
    client_id: t.clientId,
    redirect_uri: t.redirectUri,
    response_type: 'code',
    scope: t.scope ?? 'openid email profile',
    state: 'bench-state',
    nonce: 'bench-nonce',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  const auth = clientAuth(t);
  return [
    {
      method: 'GET',
      path: authorize.pathname + authorize.search,
      headers: { cookie: t.cookie },
      onResponse: (status, _body, ctx, headers) => {
        const location = headerOf(headers, 'location');
        const code = location ? new URL(location, t.issuer).searchParams.get('code') : null;
        ctx.code = code ?? '';
        if (!code) {
          fails.authorize++;
          fails.last = `authorize ${status} ${location ?? ''}`;
        }
      },
    },
    {
      method: 'POST',
      path: ep.token.pathname,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth.headers },
      setupRequest: (req, ctx) => ({
        ...req,
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: String(ctx.code ?? ''),
          redirect_uri: t.redirectUri,
          code_verifier: verifier,
          ...auth.body,
        }).toString(),
      }),
      onResponse: (status, body, ctx) => {
        ctx.accessToken = '';
        if (status !== 200) {
          fails.token++;
          fails.last = `token ${status} ${body.slice(0, 200)}`;
          return;
        }
        ctx.accessToken = (JSON.parse(body) as { access_token: string }).access_token;
      },
    },
    {
      method: 'GET',
      path: ep.userinfo.pathname,
      setupRequest: (req, ctx) => ({ ...req, headers: { authorization: `Bearer ${String(ctx.accessToken ?? '')}` } }),
      onResponse: (status, body) => {
        if (status !== 200) {
          fails.userinfo++;
          fails.last = `userinfo ${status} ${body.slice(0, 200)}`;
        }
      },
    },
  ];
}

/**
 * `n` refresh tokens of the target's session, each from its own code flow with
 * offline_access. The provider may renew the session cookie meanwhile
 * (oidc-provider does on a consent): `t.cookie` is updated.
 */
export async function seedRefreshTokens(t: OidcTarget, ep: OidcEndpoints, n: number): Promise<string[]> {
  const ua = new UserAgent();
  ua.addCookies(t.base ?? t.issuer, t.cookie);
  const stopAt = (u: URL) => u.href.startsWith(t.redirectUri);
  const auth = clientAuth(t);
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) {
    const { verifier, challenge } = await pkcePair();
    const authorize = new URL(ep.authorization);
    authorize.search = new URLSearchParams({
      client_id: t.clientId,
      redirect_uri: t.redirectUri,
      response_type: 'code',
      scope: `${t.scope ?? 'openid email profile'} offline_access`,
      state: `seed-${i}`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...t.offlineParams,
    }).toString();
    let page = await ua.get(authorize, { stopAt });
    for (let step = 0; step < 3 && !stopAt(new URL(page.url)); step++) {
      const button =
        t.consentButton &&
        parseForms(page.text).some((f) => f.buttons.some((b) => t.consentButton!.test(b.text) || t.consentButton!.test(b.value)))
          ? t.consentButton
          : undefined;
      page = await ua.submit(page, {}, { stopAt, ...(button ? { button } : {}) });
    }
    const code = new URL(page.url).searchParams.get('code');
    if (!code) throw new Error(`${t.name}: seeding a refresh token: no code (${page.status} ${page.url} ${page.text.slice(0, 200)})`);
    const res = await fetch(ep.token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth.headers },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: t.redirectUri,
        code_verifier: verifier,
        ...auth.body,
      }),
    });
    const body = (await res.json()) as { refresh_token?: string };
    if (!body.refresh_token) throw new Error(`${t.name}: seeding a refresh token: ${res.status} ${JSON.stringify(body)}`);
    tokens.push(body.refresh_token);
  }
  t.cookie = ua.cookieHeader(ep.authorization);
  return tokens;
}

/**
 * The refresh grant, rotating chains: `chains` holds each chain's current token
 * and is updated in place, so the warm-up, the measured run and later rounds go
 * on with the same chains. autocannon clears a connection's context at every
 * loop, so a request takes a chain that is not in flight and gives it back with
 * the answer. It builds each connection's next request before the run stops and
 * never sends it: that chain stays taken until `release()` (call it before each
 * run) and is still good, so seed twice as many chains as connections (the
 * warm-up's leftovers must not starve the measured run).
 */
export function refreshRequests(
  t: OidcTarget,
  ep: OidcEndpoints,
  chains: string[],
  fails: OidcFailures,
): { requests: Request[]; release(): void } {
  const auth = clientAuth(t);
  const busy = new Set<number>();
  const requests: Request[] = [
    {
      method: 'POST',
      path: ep.token.pathname,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth.headers },
      setupRequest: (req, ctx) => {
        let chain = chains.findIndex((_, i) => !busy.has(i));
        if (chain < 0) {
          fails.refresh++;
          fails.last = 'refresh: no chain free (seed more than the connections)';
          chain = 0;
        }
        busy.add(chain);
        ctx.chain = chain;
        return {
          ...req,
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: chains[chain]!, ...auth.body }).toString(),
        };
      },
      onResponse: (status, body, ctx) => {
        const chain = ctx.chain as number;
        busy.delete(chain);
        if (status !== 200) {
          fails.refresh++;
          fails.last = `refresh ${status} ${body.slice(0, 200)}`;
          return;
        }
        const rotated = (JSON.parse(body) as { refresh_token?: string }).refresh_token;
        if (rotated) chains[chain] = rotated;
      },
    },
  ];
  return { requests, release: () => busy.clear() };
}

export const BENCH_OIDC_CLIENT = {
  clientId: 'bench-rp',
  clientSecret: 'bench-rp-secret-0123456789abcdefghijklmnop',
  redirectUri: 'http://127.0.0.1:9/bench/callback',
};

/** Start the yardstick and sign its one user in (consent for the flow's scope stored). */
export async function startYardstick(runDir: string, scope = 'openid email profile'): Promise<OidcTarget> {
  const proc = await startBenchServer('oidc-yardstick', 'oidc-provider-server.ts', runDir, '/.well-known/openid-configuration', {
    BENCH_OIDC_CLIENT_ID: BENCH_OIDC_CLIENT.clientId,
    BENCH_OIDC_CLIENT_SECRET: BENCH_OIDC_CLIENT.clientSecret,
    BENCH_OIDC_REDIRECT_URI: BENCH_OIDC_CLIENT.redirectUri,
  });
  const issuer = proc.url;
  const ep = await discover(issuer);
  const ua = new UserAgent();
  const authorize = new URL(ep.authorization);
  authorize.search = new URLSearchParams({
    client_id: BENCH_OIDC_CLIENT.clientId,
    redirect_uri: BENCH_OIDC_CLIENT.redirectUri,
    response_type: 'code',
    scope,
  }).toString();
  await loginAtPeer(ua, authorize, 'bench-user', BENCH_OIDC_CLIENT.redirectUri);
  return {
    name: 'yardstick',
    issuer,
    ...BENCH_OIDC_CLIENT,
    cookie: ua.cookieHeader(ep.authorization),
    scope,
    offlineParams: { prompt: 'consent' },
    proc,
  };
}

/**
 * This service as a target, set up through its public API (API.md, "OAuth clients"
 * and "The browser session"): the bench admin creates a first-party confidential
 * client, a bench user signs in and trades the pages' access token for the
 * browser-session cookie (POST /session with the issuer's Origin). `base` is
 * where the service listens, `issuer` its PUBLIC_URL. Written before the
 * provider's endpoints were on main: check it against them when wiring.
 */
export async function oursTarget(o: {
  base: string;
  /** The service's PUBLIC_URL; default: the issuer of its discovery document. */
  issuer?: string;
  admin: { email: string; password: string };
  proc?: Proc;
}): Promise<OidcTarget> {
  const issuer =
    o.issuer ??
    String(((await (await fetch(`${o.base}/.well-known/openid-configuration`)).json()) as { issuer: string }).issuer).replace(/\/$/, '');
  const json = async (path: string, body: unknown, token?: string, want = 200) => {
    const res = await fetch(o.base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== want) throw new Error(`POST ${path}: expected ${want}, got ${res.status} ${text.slice(0, 300)}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  const adminToken = String((await json('/auth/login', o.admin)).accessToken);
  const client = await json(
    '/admin/clients',
    {
      name: 'Bench relying party',
      type: 'confidential',
      redirectUris: [BENCH_OIDC_CLIENT.redirectUri],
      postLogoutRedirectUris: [],
      grantTypes: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'email', 'profile', 'offline_access'],
      firstParty: true,
      allowedOrigins: [],
      idTokenSignedResponseAlg: 'RS256',
      backchannelLogoutUri: null,
      audiences: [],
      roles: [],
    },
    adminToken,
    201,
  );
  const user = { email: 'bench-oidc-user@bench.test', password: 'Bench-Oidc-Passw0rd!' };
  const reg = await fetch(`${o.base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...user, name: 'Bench OIDC User' }),
  });
  if (reg.status !== 201 && reg.status !== 409) throw new Error(`register: ${reg.status} ${await reg.text()}`);
  const userToken = String((await json('/auth/login', user)).accessToken);
  const session = await fetch(`${o.base}/session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${userToken}`, origin: new URL(issuer).origin },
  });
  if (session.status !== 204) throw new Error(`POST /session: expected 204, got ${session.status} ${await session.text()}`);
  const cookie = session.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  return {
    name: 'ours',
    issuer,
    base: o.base,
    clientId: String(client.id),
    clientSecret: String(client.clientSecret),
    redirectUri: BENCH_OIDC_CLIENT.redirectUri,
    cookie,
    consentButton: /allow/i,
    ...(o.proc ? { proc: o.proc } : {}),
  };
}

/** A target ready to measure: its endpoints, its scenarios' requests, its failure counters. */
export type OidcPrepared = {
  t: OidcTarget;
  fails: OidcFailures;
  flow: Request[];
  refresh: {
    requests: Request[];
    release(): void;
    /**
     * New chains before a run that follows another: a request in flight when a
     * run stops is answered but its rotated token is never read, so its chain
     * holds a spent token, and presenting it revokes the sign-in's refresh
     * tokens for the client (reuse detection), every chain with it.
     */
    reseedIfUsed(): Promise<void>;
  };
};

/** Discover the target's endpoints, seed two refresh chains per connection (when `refresh` runs), build the requests. */
export async function prepareOidc(t: OidcTarget, only: string[], connections: number): Promise<OidcPrepared> {
  const ep = await discover(t.issuer, t.base);
  const fails = noFailures();
  const chains = only.includes('refresh') ? await seedRefreshTokens(t, ep, 2 * connections) : [];
  const flow = only.includes('flow') ? await codeFlowRequests(t, ep, fails) : [];
  let used = false;
  const refresh = refreshRequests(t, ep, chains, fails);
  return {
    t,
    fails,
    flow,
    refresh: {
      ...refresh,
      async reseedIfUsed() {
        if (used) chains.splice(0, chains.length, ...(await seedRefreshTokens(t, ep, 2 * connections)));
        used = true;
      },
    },
  };
}

/** One scenario's load on a prepared target (release the refresh chains first). */
export function oidcLoadSpec(
  p: OidcPrepared,
  scenario: 'flow' | 'refresh',
  s: { connections: number; durationS: number; warmupS: number },
): LoadSpec {
  p.refresh.release();
  return {
    url: new URL(p.t.base ?? p.t.issuer).origin,
    connections: s.connections,
    durationS: s.durationS,
    warmupS: s.warmupS,
    requests: scenario === 'flow' ? p.flow : p.refresh.requests,
    ...(p.t.proc ? { target: p.t.proc } : {}),
  };
}

/**
 * The authorization endpoint's redirects are its success: counted out of the
 * figures' non-2xx (the response handlers count the flows that failed).
 */
export function withoutRedirects(f: LoadFigures): LoadFigures {
  const redirects = Object.entries(f.statusCodes)
    .filter(([code]) => code.startsWith('3'))
    .reduce((n, [, v]) => n + v, 0);
  return { ...f, non2xx: f.non2xx - redirects };
}

export const failureCount = (f: OidcFailures) => f.authorize + f.token + f.userinfo + f.refresh;

// ---------------------------------------------------------------- the command

/** A process the bench did not start, seen as a Proc for RSS (never stopped by the bench). */
function externalProc(name: string, pid: number, url: string): Proc {
  return { name, pid, url, logFile: '', rssMb: () => rssMbOf(pid), stop: async () => null, exited: new Promise(() => {}) };
}

async function main() {
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const envNum = (name: string, dflt: number) => (process.env[name] ? Number(process.env[name]) : dflt);
  const quick = argv.includes('--quick');
  const S = {
    rounds: envNum('BENCH_ROUNDS', quick ? 1 : 3),
    warmupS: envNum('BENCH_WARMUP_SECONDS', quick ? 2 : 5),
    durationS: envNum('BENCH_DURATION_SECONDS', quick ? 5 : 15),
    connections: envNum('BENCH_OIDC_CONNECTIONS', 16),
  };
  const only = (opt('--only') ?? 'flow,refresh').split(',').map((s) => s.trim());
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = join(tmpdir(), `auth-bench-oidc-${stamp}`);
  mkdirSync(runDir, { recursive: true });
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  setLoadLog(log);
  log(`run directory ${runDir}; ${S.rounds} round(s) of ${S.durationS} s, ${S.connections} connections`);

  const targets: OidcTarget[] = [];
  const yard = await startYardstick(runDir);
  targets.push(yard);
  const ours = opt('--issuer');
  const service = opt('--service');
  if (service) {
    // A running service set up here through its API (oursTarget); --public-url when PUBLIC_URL is not where it listens.
    const pid = opt('--issuer-pid');
    if (pid) process.env.BENCH_OWN_PIDS = [process.env.BENCH_OWN_PIDS, pid].filter(Boolean).join(',');
    const base = service.replace(/\/$/, '');
    targets.push(
      await oursTarget({
        base,
        ...(opt('--public-url') ? { issuer: opt('--public-url')!.replace(/\/$/, '') } : {}),
        admin: { email: opt('--admin-email') ?? ADMIN.email, password: opt('--admin-password') ?? ADMIN.password },
        ...(pid ? { proc: externalProc('ours', Number(pid), base) } : {}),
      }),
    );
  } else if (ours) {
    const need = (name: string) => {
      const v = opt(name);
      if (!v) throw new Error(`${name} is required with --issuer`);
      return v;
    };
    const offline = opt('--offline-params');
    // The service's process, when given: its CPU is the bench's own (not foreign noise) and its RSS is reported.
    const pid = opt('--issuer-pid');
    if (pid) process.env.BENCH_OWN_PIDS = [process.env.BENCH_OWN_PIDS, pid].filter(Boolean).join(',');
    const secret = opt('--client-secret');
    targets.push({
      name: 'ours',
      issuer: ours.replace(/\/$/, ''),
      clientId: need('--client-id'),
      ...(secret ? { clientSecret: secret } : {}),
      redirectUri: need('--redirect-uri'),
      cookie: need('--cookie'),
      ...(opt('--scope') ? { scope: opt('--scope')! } : {}),
      ...(offline ? { offlineParams: Object.fromEntries(new URLSearchParams(offline)) } : {}),
      consentButton: new RegExp(opt('--consent-button') ?? 'allow', 'i'),
      ...(pid ? { proc: externalProc('ours', Number(pid), ours) } : {}),
    });
  }

  const runs: Record<string, LoadFigures[]> = {};
  const failures: Record<string, OidcFailures> = {};
  try {
    const prepared = await Promise.all(
      targets.map(async (t) => {
        const p = await prepareOidc(t, only, S.connections);
        failures[t.name] = p.fails;
        return p;
      }),
    );
    for (let round = 1; round <= S.rounds; round++) {
      log(`round ${round}/${S.rounds}`);
      for (const scenario of only) {
        for (const p of prepared) {
          if (scenario === 'refresh') await p.refresh.reseedIfUsed();
          const f = withoutRedirects(await load(oidcLoadSpec(p, scenario as 'flow' | 'refresh', S)));
          const key = `${scenario}.${p.t.name}`;
          (runs[key] ??= []).push(f);
          const per = scenario === 'flow' ? 3 : 1;
          log(
            `  ${key.padEnd(18)} ${(f.rps / per).toFixed(0).padStart(6)} ${scenario === 'flow' ? 'flows' : 'refreshes'}/s (${f.rps.toFixed(0)} req/s)  p50 ${f.p50} ms  p99 ${f.p99} ms  RSS ${f.rssMb ?? '-'} MB  foreign ${f.foreignCores}  failures ${JSON.stringify(failures[p.t.name])}`,
          );
        }
      }
    }
  } finally {
    for (const t of targets) await t.proc?.stop();
    await closeMeter();
  }

  // The report: per scenario, each target's median round; with ours, the ratio ours / yardstick per round.
  const lines = [
    '| scenario | provider | per second (median round) | req/s | p50 ms | p99 ms | RSS MB | failures |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const ratios: Record<string, { median: number; perRound: number[] }> = {};
  for (const scenario of only) {
    for (const t of targets) {
      const rs = runs[`${scenario}.${t.name}`] ?? [];
      const m = [...rs].sort((a, b) => a.rps - b.rps)[Math.floor((rs.length - 1) / 2)];
      if (!m) continue;
      const per = scenario === 'flow' ? 3 : 1;
      const f = failures[t.name]!;
      lines.push(
        `| ${scenario} | ${t.name} | ${(m.rps / per).toFixed(0)} ${scenario === 'flow' ? 'flows' : 'refreshes'} | ${m.rps.toFixed(0)} | ${m.p50} | ${m.p99} | ${m.rssMb ?? '-'} | ${scenario === 'flow' ? f.authorize + f.token + f.userinfo : f.refresh} |`,
      );
    }
    const a = runs[`${scenario}.ours`];
    const b = runs[`${scenario}.yardstick`];
    if (a && b) {
      const perRound = a.map((r, i) => Math.round((r.rps / b[i]!.rps) * 100) / 100);
      ratios[scenario] = { median: median(perRound), perRound };
    }
  }
  console.log(`\n${lines.join('\n')}`);
  for (const [scenario, r] of Object.entries(ratios))
    console.log(`${scenario}: ours / oidc-provider = ${r.median} (per round ${r.perRound.join(' / ')})`);
  for (const [name, f] of Object.entries(failures)) if (f.last) console.log(`${name}: last failure: ${f.last}`);
  const resultsDir = join(REPO_ROOT, 'test/bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `oidc-${stamp}.json`);
  writeFileSync(file, JSON.stringify({ settings: S, only, runs, failures, ratios }, null, 2));
  log(`results in ${file}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
