// Service clients (machine to machine) in the bench (README.md, "Service
// clients"). Three scenarios, each a ratio measured round by round:
//
//   cc          POST the token endpoint with grant_type=client_credentials
//               (client_secret_basic): ours against oidc-provider's
//               clientCredentials feature (RS256 JWT access tokens both).
//   introspect  POST the introspection endpoint (RFC 7662) with one live access
//               token of the same client: ours (its RFC 9068 JWT: signature,
//               client and liveness checks) against oidc-provider (its opaque
//               token, looked up in its in-memory store).
//   svcapi      GET /users?limit=1 (users:read) with a service client's token
//               (roles ['admin']) against the same request with a signed-in
//               user's token holding the same role, on the same service.
import type { Request } from 'autocannon';
import type { LoadSpec } from './lib/load.js';
import type { Proc } from './lib/proc.js';
import { startBenchServer } from './lib/service.js';

export const SERVICE_CLIENT_SCENARIOS = ['cc', 'introspect', 'svcapi'] as const;
export type ServiceClientScenario = (typeof SERVICE_CLIENT_SCENARIOS)[number];

/** Where a target's token and introspection endpoints are, and the client's credentials. */
export type CcTarget = {
  name: string;
  base: string;
  tokenPath: string;
  introspectPath: string;
  clientId: string;
  clientSecret: string;
  /** Extra token request parameters (the yardstick's resource indicator, for a JWT). */
  tokenParams: Record<string, string>;
  /** A live access token of the client, to introspect. */
  introspected: string;
  proc?: Proc;
};

/** Failed steps seen by the response handlers (warm-up included). */
export type CcFailures = Record<ServiceClientScenario, number> & { last?: string };
export const noCcFailures = (): CcFailures => ({ cc: 0, introspect: 0, svcapi: 0 });

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function tokenOf(base: string, path: string, id: string, secret: string, params: Record<string, string>): Promise<string> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...params }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${base}${path}: client_credentials answered ${res.status} ${text.slice(0, 300)}`);
  return String((JSON.parse(text) as { access_token: string }).access_token);
}

async function check(res: Response, want: number, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (res.status !== want) throw new Error(`${what}: expected ${want}, got ${res.status} ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export const BENCH_CC_CLIENT = { clientId: 'bench-svc', clientSecret: 'bench-svc-secret-0123456789abcdefghijklmnop' };
const YARD_RESOURCE = 'urn:bench:api';

/** oidc-provider with clientCredentials and introspection (oidc-provider-cc-server.ts), and its client's opaque token. */
export async function startCcYardstick(runDir: string): Promise<CcTarget> {
  const proc = await startBenchServer('cc-yardstick', 'oidc-provider-cc-server.ts', runDir, '/.well-known/openid-configuration', {
    BENCH_CC_CLIENT_ID: BENCH_CC_CLIENT.clientId,
    BENCH_CC_CLIENT_SECRET: BENCH_CC_CLIENT.clientSecret,
    BENCH_CC_RESOURCE: YARD_RESOURCE,
  });
  const d = await check(await fetch(`${proc.url}/.well-known/openid-configuration`), 200, 'yardstick discovery');
  const tokenPath = new URL(String(d.token_endpoint)).pathname;
  const introspectPath = new URL(String(d.introspection_endpoint)).pathname;
  const { clientId, clientSecret } = BENCH_CC_CLIENT;
  return {
    name: 'yardstick',
    base: proc.url,
    tokenPath,
    introspectPath,
    clientId,
    clientSecret,
    tokenParams: { resource: YARD_RESOURCE, scope: 'api:read' },
    // Without a resource its token is opaque and stored: what its introspection answers for.
    introspected: await tokenOf(proc.url, tokenPath, clientId, clientSecret, { scope: 'api:read' }),
    proc,
  };
}

/**
 * This service as a target, set up through its API: the bench admin registers a
 * service client (client_credentials, roles ['admin'], audience the API's
 * JWT_AUDIENCE). Also returns the admin's own token and the client's token for
 * svcapi: the admin holds the same role as the client.
 */
export async function oursCcTarget(o: {
  base: string;
  admin: { email: string; password: string };
  audience: string;
  proc?: Proc;
}): Promise<{ t: CcTarget; userToken: string; clientToken: string }> {
  const login = await check(
    await fetch(`${o.base}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(o.admin),
    }),
    200,
    'POST /auth/login',
  );
  const userToken = String(login.accessToken);
  const client = await check(
    await fetch(`${o.base}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${userToken}` },
      body: JSON.stringify({
        id: BENCH_CC_CLIENT.clientId,
        name: 'Bench service client',
        type: 'confidential',
        redirectUris: [],
        grantTypes: ['client_credentials'],
        scopes: [],
        audiences: [o.audience],
        roles: ['admin'],
      }),
    }),
    201,
    'POST /admin/clients',
  );
  const d = await check(await fetch(`${o.base}/.well-known/openid-configuration`), 200, 'discovery');
  const tokenPath = new URL(String(d.token_endpoint)).pathname;
  const introspectPath = new URL(String(d.introspection_endpoint)).pathname;
  const clientId = String(client.id);
  const clientSecret = String(client.clientSecret);
  const clientToken = await tokenOf(o.base, tokenPath, clientId, clientSecret, {});
  // Both tokens must pass the API before anything is measured.
  for (const [who, token] of [
    ['user', userToken],
    ['client', clientToken],
  ] as const)
    await check(await fetch(`${o.base}/users?limit=1`, { headers: { authorization: `Bearer ${token}` } }), 200, `GET /users (${who})`);
  return {
    t: {
      name: 'ours',
      base: o.base,
      tokenPath,
      introspectPath,
      clientId,
      clientSecret,
      tokenParams: {},
      introspected: clientToken,
      ...(o.proc ? { proc: o.proc } : {}),
    },
    userToken,
    clientToken,
  };
}

/** The token request of `cc`, looped. */
export function ccRequests(t: CcTarget, fails: CcFailures): Request[] {
  return [
    {
      method: 'POST',
      path: t.tokenPath,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(t.clientId, t.clientSecret) },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...t.tokenParams }).toString(),
      onResponse: (status, body) => {
        if (status !== 200 || !body.includes('"access_token"')) {
          fails.cc++;
          fails.last = `cc ${status} ${body.slice(0, 200)}`;
        }
      },
    },
  ];
}

/** The introspection request of `introspect`, looped; an inactive answer is a failure. */
export function introspectRequests(t: CcTarget, fails: CcFailures): Request[] {
  return [
    {
      method: 'POST',
      path: t.introspectPath,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(t.clientId, t.clientSecret) },
      body: new URLSearchParams({ token: t.introspected }).toString(),
      onResponse: (status, body) => {
        if (status !== 200 || !body.includes('"active":true')) {
          fails.introspect++;
          fails.last = `introspect ${status} ${body.slice(0, 200)}`;
        }
      },
    },
  ];
}

/** `GET /users?limit=1` with `token`. */
export function apiRequests(token: string, fails: CcFailures): Request[] {
  return [
    {
      method: 'GET',
      path: '/users?limit=1',
      headers: { authorization: `Bearer ${token}` },
      onResponse: (status, body) => {
        if (status !== 200) {
          fails.svcapi++;
          fails.last = `svcapi ${status} ${body.slice(0, 200)}`;
        }
      },
    },
  ];
}

export function ccLoadSpec(
  base: string,
  requests: Request[],
  s: { connections: number; durationS: number; warmupS: number },
  proc?: Proc,
): LoadSpec {
  return {
    url: new URL(base).origin,
    connections: s.connections,
    durationS: s.durationS,
    warmupS: s.warmupS,
    requests,
    ...(proc ? { target: proc } : {}),
  };
}
