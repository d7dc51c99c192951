// OpenID Connect Back-Channel Logout (docs/api.md "OpenID Connect provider"):
// whenever a session ends, every client with a backchannelLogoutUri that the
// session signed into gets a logout token POSTed to it, off the request path.
// The relying party here is a real HTTP server on loopback that checks each
// token the way a client library does, against the service's JWKS. Deliveries
// are durable: a client that is down gets the token once it is back.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backchannelDeliveries } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { movableClock } from '../helpers/browser.js';
import { until } from '../helpers/eventually.js';
import { type Call, client, login, loginAdmin, PASSWORD, registerAndLogin, type Session } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { TestSmtp, tokenFrom } from '../helpers/smtp.js';
import { browserCookieFor, idTokenFor } from '../helpers/oauth.js';
import { useTestApp } from '../helpers/use-app.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

type Logout = { clientId: string; sid: string; sub: string };

/**
 * A relying party's back-channel logout endpoint: POST /bc/<client id> with a
 * form-encoded logout_token, verified with jose against the provider's JWKS
 * (Back-Channel Logout 1.0 §2.6). Answers 503 while `down`.
 */
class RelyingParty {
  private server: Server | undefined;
  readonly received: Logout[] = [];
  readonly rejected: string[] = [];
  attempts = 0;
  down = false;
  /** Takes the request and never answers. */
  hang = false;
  jwks: JSONWebKeySet = { keys: [] };
  issuer = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        this.attempts++;
        if (this.hang) return;
        if (this.down) {
          res.writeHead(503).end();
          return;
        }
        this.check(req.url ?? '', req.headers['content-type'] ?? '', body).then(
          (logout) => {
            this.received.push(logout);
            res.writeHead(200, { 'cache-control': 'no-store' }).end();
          },
          (err: Error) => {
            this.rejected.push(err.message);
            res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
          },
        );
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
  }

  uri(clientId: string): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/bc/${clientId}`;
  }

  private async check(url: string, contentType: string, body: string): Promise<Logout> {
    const clientId = decodeURIComponent(url.replace(/^\/bc\//, ''));
    if (!contentType.startsWith('application/x-www-form-urlencoded')) throw new Error(`content-type ${contentType}`);
    const token = new URLSearchParams(body).get('logout_token');
    if (!token) throw new Error('no logout_token');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(this.jwks), {
      issuer: this.issuer,
      audience: clientId,
      typ: 'logout+jwt',
      requiredClaims: ['iat', 'exp', 'jti', 'sid', 'sub', 'events'],
    });
    if (protectedHeader.typ !== 'logout+jwt') throw new Error(`typ ${protectedHeader.typ}`);
    if ('nonce' in payload) throw new Error('a logout token never has a nonce');
    const events = payload.events as Record<string, unknown> | undefined;
    if (typeof events?.[EVENT] !== 'object' || events[EVENT] === null) throw new Error('no back-channel logout event');
    if (payload.exp! - payload.iat! > 120) throw new Error('lives longer than 2 minutes');
    return { clientId, sid: payload.sid as string, sub: payload.sub! };
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => (this.server ? this.server.close(r) : r(undefined)));
  }
}

/** A relying party (and any other server the block needs) running for the describe block. */
function useRelyingParty(others: { start(): Promise<unknown>; stop(): Promise<unknown> }[] = []): RelyingParty {
  const rp = new RelyingParty();
  beforeAll(async () => {
    await Promise.all([rp.start(), ...others.map((o) => o.start())]);
  });
  afterAll(async () => {
    await Promise.all([rp.stop(), ...others.map((o) => o.stop())]);
  });
  return rp;
}

const sidOf = (s: Session): string => JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid;

let seq = 0;
const REDIRECT = 'https://rp.example.com/callback';
/** Each registered client's secret. */
const secrets = new Map<string, string>();
/** Each sign-in's browser-session cookie, made once (POST /session). */
const cookies = new Map<string, string>();

/** A first-party relying party registered through the admin API, its back-channel logout URI on the loopback RP. */
async function registerClient(call: Call, admin: Session, rp: RelyingParty, opts: { backchannel?: boolean; alg?: string } = {}) {
  const id = `rp-${Date.now().toString(36)}-${seq++}`;
  const res = await call('POST', '/admin/clients', {
    token: admin.accessToken,
    body: {
      id,
      name: 'Relying party',
      redirectUris: [REDIRECT],
      scopes: ['openid'],
      firstParty: true,
      idTokenSignedResponseAlg: opts.alg ?? 'RS256',
      backchannelLogoutUri: opts.backchannel === false ? null : rp.uri(id),
    },
  });
  expect(res.status).toBe(201);
  secrets.set(id, res.body.clientSecret);
  return id;
}

const cookieOf = async (t: TestApp, s: Session) => {
  let cookie = cookies.get(s.accessToken);
  if (cookie === undefined) {
    cookie = await browserCookieFor(t, s);
    cookies.set(s.accessToken, cookie);
  }
  return cookie;
};

/**
 * The session signs into the client as a relying party does it: a code from
 * /oauth2/authorize with the browser session, exchanged at /oauth2/token. The
 * ID token names the session (`sid`) the logout token will name.
 */
async function signInTo(t: TestApp, s: Session, clientId: string): Promise<void> {
  const q = new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', state: 'st' });
  const res = await t.request(`/oauth2/authorize?${q}`, { headers: { cookie: await cookieOf(t, s) } });
  const code = new URL(res.headers.get('location') ?? '', 'http://x').searchParams.get('code');
  if (res.status !== 302 || code === null) throw new Error(`authorize: ${res.status} ${res.headers.get('location')}`);
  const tokenRes = await t.request('/oauth2/token', {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${clientId}:${secrets.get(clientId)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }).toString(),
  });
  const body = (await tokenRes.json()) as { id_token?: string };
  if (tokenRes.status !== 200 || !body.id_token) throw new Error(`token: ${tokenRes.status} ${JSON.stringify(body)}`);
  const idClaims = JSON.parse(Buffer.from(body.id_token.split('.')[1]!, 'base64url').toString());
  expect(idClaims).toMatchObject({ sid: sidOf(s), sub: s.userId });
}

describe.each(BACKENDS)('back-channel logout on %s', (backend) => {
  const smtp = new TestSmtp();
  const rp = useRelyingParty([smtp]);
  const app = useTestApp(backend, () => ({ overrides: { SMTP_URL: smtp.url, PUBLIC_URL: 'https://auth.example.test' } }));
  const { call } = app;
  let admin: Session;
  beforeAll(async () => {
    admin = await loginAdmin(call);
    rp.jwks = (await call('GET', '/.well-known/jwks.json')).body;
    rp.issuer = app.t.deps.config.publicUrl;
  });

  const signIn = (s: Session, clientId: string) => signInTo(app.t, s, clientId);
  /** The logout tokens this session's clients got, once `n` have arrived (within 2 s). */
  const logoutsFor = (sid: string, n = 1) =>
    until(
      `${n} logout token(s) for session ${sid}`,
      async () => {
        const got = rp.received.filter((l) => l.sid === sid);
        return got.length >= n ? got : undefined;
      },
      { timeoutMs: 2_000 },
    );

  it('POST /auth/logout: each client the session signed into gets one valid logout token naming the session and the user', async () => {
    const a = await registerClient(call, admin, rp);
    const b = await registerClient(call, admin, rp, { alg: 'ES256' });
    const silent = await registerClient(call, admin, rp, { backchannel: false });
    const u = await registerAndLogin(call);
    const other = await login(call, u.email, PASSWORD);
    for (const c of [a, b, silent]) await signIn(u, c);
    await signIn(other, a);

    expect((await call('POST', '/auth/logout', { body: { refreshToken: u.refreshToken } })).status).toBe(204);
    const got = await logoutsFor(sidOf(u), 2);
    expect(got.map((l) => l.clientId).sort()).toEqual([a, b].sort());
    for (const l of got) expect(l.sub).toBe(u.userId);
    // The ES256 client's token is signed with its ID-token algorithm.
    expect(rp.rejected).toEqual([]);

    // Logging out again sends nothing more; the other session's client heard nothing.
    await call('POST', '/auth/logout', { body: { refreshToken: u.refreshToken } });
    await app.t.services.backchannel.idle();
    expect(rp.received.filter((l) => l.sid === sidOf(u))).toHaveLength(2);
    expect(rp.received.filter((l) => l.sid === sidOf(other))).toHaveLength(0);
  });

  it('oidcc-backchannel-rp-initiated-logout: RP-initiated logout (/oauth2/logout) logs the session out of every client it signed into, the initiating one too, and prompt=none then fails', async () => {
    const a = await registerClient(call, admin, rp);
    const b = await registerClient(call, admin, rp);
    const u = await registerAndLogin(call);
    await signIn(u, a);
    await signIn(u, b);
    const cookie = await cookieOf(app.t, u);
    const hint = await idTokenFor(app.t, { sub: u.userId, aud: a, sid: sidOf(u) });
    const res = await app.t.request(`/oauth2/logout?${new URLSearchParams({ id_token_hint: hint })}`, { headers: { cookie } });
    expect(res.status).toBeLessThan(400);
    const got = await logoutsFor(sidOf(u), 2);
    expect(got.map((l) => l.clientId).sort()).toEqual([a, b].sort());
    // The same browser asking again without a page: no session any more.
    const q = new URLSearchParams({
      client_id: b,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'openid',
      state: 'again',
      prompt: 'none',
    });
    const again = await app.t.request(`/oauth2/authorize?${q}`, { headers: { cookie } });
    expect(again.status).toBe(302);
    const back = new URL(again.headers.get('location') ?? '', 'http://x').searchParams;
    expect(back.get('error')).toBe('login_required');
    expect(back.get('state')).toBe('again');
  });

  it('a session ended from the account (DELETE /users/me/sessions/:id) logs its clients out', async () => {
    const c = await registerClient(call, admin, rp);
    const u = await registerAndLogin(call);
    const phone = await login(call, u.email, PASSWORD);
    await signIn(phone, c);
    expect((await call('DELETE', `/users/me/sessions/${sidOf(phone)}`, { token: u.accessToken })).status).toBe(204);
    expect(await logoutsFor(sidOf(phone))).toEqual([{ clientId: c, sid: sidOf(phone), sub: u.userId }]);
  });

  it('an admin ending a user’s sessions logs every one of them out of its clients', async () => {
    const c = await registerClient(call, admin, rp);
    const u = await registerAndLogin(call);
    const second = await login(call, u.email, PASSWORD);
    await signIn(u, c);
    await signIn(second, c);
    expect((await call('DELETE', `/users/${u.userId}/sessions`, { token: admin.accessToken })).status).toBe(204);
    await logoutsFor(sidOf(u));
    await logoutsFor(sidOf(second));
  });

  it('a password reset ends the sessions and logs them out of their clients', async () => {
    const c = await registerClient(call, admin, rp);
    const u = await registerAndLogin(call);
    await signIn(u, c);
    expect((await call('POST', '/auth/password/forgot', { body: { email: u.email } })).status).toBe(202);
    const mail = (await smtp.waitFor(u.email, 2)).find((m) => /reset/i.test(m.subject))!;
    const reset = await call('POST', '/auth/password/reset', { body: { token: tokenFrom(mail), password: 'another-Long-passphrase-77' } });
    expect(reset.status).toBe(204);
    expect(await logoutsFor(sidOf(u))).toEqual([{ clientId: c, sid: sidOf(u), sub: u.userId }]);
  });

  it('two instances over one database send each delivery once', async () => {
    const other = await createTestApp({
      database: app.database,
      overrides: { SMTP_URL: smtp.url, PUBLIC_URL: 'https://auth.example.test' },
      prepare: false,
    });
    try {
      const c = await registerClient(call, admin, rp);
      const users = await Promise.all(Array.from({ length: 6 }, () => registerAndLogin(call)));
      for (const u of users) await signIn(u, c);
      // Half the sessions end on each instance; both senders run.
      await Promise.all(
        users.map((u, i) => client(i % 2 ? other : app.t)('POST', '/auth/logout', { body: { refreshToken: u.refreshToken } })),
      );
      for (const u of users) await logoutsFor(sidOf(u));
      await Promise.all([app.t.services.backchannel.idle(), other.services.backchannel.idle()]);
      for (const u of users) expect(rp.received.filter((l) => l.sid === sidOf(u))).toHaveLength(1);
    } finally {
      await other.stop();
    }
  });

  it('an account deletion still logs its sessions out of their clients, though the rows are gone', async () => {
    const c = await registerClient(call, admin, rp);
    const u = await registerAndLogin(call);
    await signIn(u, c);
    expect((await call('DELETE', `/users/${u.userId}`, { token: admin.accessToken })).status).toBe(204);
    expect(await logoutsFor(sidOf(u))).toEqual([{ clientId: c, sid: sidOf(u), sub: u.userId }]);
  });
});

describe.each(BACKENDS)('back-channel logout to a client that is down, on %s', (backend) => {
  const rp = useRelyingParty();
  const clock = movableClock();
  // The sender is driven by hand (runOnce) on a clock the test moves.
  const app = useTestApp(backend, () => ({
    clock: clock.now,
    overrides: { PUBLIC_URL: 'https://auth.example.test' },
    app: { backchannel: { send: false, maxAttempts: 6, timeoutMs: 300 } },
  }));
  const { call } = app;
  let admin: Session;
  beforeAll(async () => {
    admin = await loginAdmin(call);
    rp.jwks = (await call('GET', '/.well-known/jwks.json')).body;
    rp.issuer = app.t.deps.config.publicUrl;
  });
  beforeEach(() => {
    rp.down = false;
    rp.hang = false;
  });

  const sender = () => app.t.services.backchannel;
  const deliveryOf = async (sid: string) =>
    (await app.database.db.select().from(backchannelDeliveries).where(eq(backchannelDeliveries.sessionId, sid)))[0];
  const metric = async (outcome: string) => {
    const text = (await call('GET', '/metrics')).text;
    const m = text.match(new RegExp(`^backchannel_logout_deliveries_total\\{outcome="${outcome}"\\} (\\d+)`, 'm'));
    return m ? Number(m[1]) : 0;
  };
  const endedSession = async () => {
    const c = await registerClient(call, admin, rp);
    const u = await registerAndLogin(call);
    await signInTo(app.t, u, c);
    expect((await call('POST', '/auth/logout', { body: { refreshToken: u.refreshToken } })).status).toBe(204);
    return { c, u, sid: sidOf(u) };
  };

  it('retries with capped backoff while the client answers 503, and delivers once it is back', async () => {
    const before = { retried: await metric('retried'), delivered: await metric('delivered') };
    const { sid, u, c } = await endedSession();
    rp.down = true;
    const attempts0 = rp.attempts;
    expect(await sender().runOnce()).toBe(1);
    expect(rp.attempts).toBe(attempts0 + 1);
    const first = await deliveryOf(sid);
    expect(first).toMatchObject({ attempts: 1, deliveredAt: null, failedAt: null, lastError: 'http 503' });
    // Not due again before its backoff.
    expect(await sender().runOnce()).toBe(0);
    // Each retry waits longer, never more than 30 s.
    for (let i = 2; i <= 4; i++) {
      clock.advance(30_000);
      expect(await sender().runOnce()).toBe(1);
      const row = (await deliveryOf(sid))!;
      expect(row.attempts).toBe(i);
      expect(row.nextAttemptAt.getTime() - clock.now()).toBeLessThanOrEqual(30_000);
    }
    expect(rp.received.filter((l) => l.sid === sid)).toHaveLength(0);

    rp.down = false;
    clock.advance(30_000);
    await sender().idle();
    expect(rp.received.filter((l) => l.sid === sid)).toEqual([{ clientId: c, sid, sub: u.userId }]);
    expect((await deliveryOf(sid))!.deliveredAt).not.toBeNull();
    expect(await metric('retried')).toBe(before.retried + 4);
    expect(await metric('delivered')).toBe(before.delivered + 1);
    // Delivered once: nothing more goes out.
    clock.advance(60_000);
    await sender().idle();
    expect(rp.received.filter((l) => l.sid === sid)).toHaveLength(1);
  });

  it('cuts off a client that never answers at the timeout, and one that refuses connections, and retries both', async () => {
    const { sid } = await endedSession();
    rp.hang = true;
    expect(await sender().runOnce()).toBe(1);
    expect(await deliveryOf(sid)).toMatchObject({ attempts: 1, deliveredAt: null, lastError: 'timeout' });

    // A URI where nothing listens.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const c = await registerClient(call, admin, rp);
    expect(
      (
        await call('PUT', `/admin/clients/${c}`, {
          token: admin.accessToken,
          body: {
            name: 'Relying party',
            type: 'confidential',
            redirectUris: [REDIRECT],
            postLogoutRedirectUris: [],
            grantTypes: ['authorization_code', 'refresh_token'],
            scopes: ['openid'],
            firstParty: true,
            allowedOrigins: [],
            idTokenSignedResponseAlg: 'RS256',
            backchannelLogoutUri: `http://127.0.0.1:${port}/bc/${c}`,
            audiences: [],
            roles: [],
          },
        })
      ).status,
    ).toBe(200);
    const u = await registerAndLogin(call);
    await signInTo(app.t, u, c);
    await call('POST', '/auth/logout', { body: { refreshToken: u.refreshToken } });
    expect(await sender().runOnce()).toBe(1);
    expect(await deliveryOf(sidOf(u))).toMatchObject({ attempts: 1, deliveredAt: null, lastError: 'ECONNREFUSED' });

    // The first client answers again: its delivery goes out on the next try.
    rp.hang = false;
    clock.advance(30_000);
    await sender().runOnce();
    expect(rp.received.filter((l) => l.sid === sid)).toHaveLength(1);
    // Deleting a client drops what was still queued for it.
    expect((await call('DELETE', `/admin/clients/${c}`, { token: admin.accessToken })).status).toBe(204);
    expect(await deliveryOf(sidOf(u))).toBeUndefined();
  });

  it('gives a delivery up after its last attempt, and counts it', async () => {
    const givenUp = await metric('given_up');
    const { sid } = await endedSession();
    rp.down = true;
    for (let i = 0; i < 6; i++) {
      expect(await sender().runOnce()).toBe(1);
      clock.advance(30_000);
    }
    expect(await deliveryOf(sid)).toMatchObject({ attempts: 6, deliveredAt: null, lastError: 'http 503' });
    expect((await deliveryOf(sid))!.failedAt).not.toBeNull();
    expect(await metric('given_up')).toBe(givenUp + 1);
    rp.down = false;
    clock.advance(60_000);
    await sender().idle();
    expect(rp.received.filter((l) => l.sid === sid)).toHaveLength(0);
  });

  it('keeps the token out of the logs', async () => {
    const { sid } = await endedSession();
    await sender().idle();
    expect(rp.received.filter((l) => l.sid === sid)).toHaveLength(1);
    expect(app.t.logs.text).not.toMatch(/logout_token|eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
  });
});
