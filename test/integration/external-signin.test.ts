// Sign-in with an upstream OpenID provider (docs/api.md "Sign-in with external
// identity providers"), on both backends: this service served on a real
// loopback port, oidc-provider as the upstream, a browser played by UserAgent,
// and a hand-written issuer whose ID tokens fail one check each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, registerAndLogin, uniqueEmail } from '../helpers/http.js';
import { browserSignIn, createClientViaApi, pkce, type ServedProvider, serveProvider } from '../helpers/oauth.js';
import { clickThrough, loginAtPeer, type PeerProvider, UserAgent } from '../helpers/oidc-peers.js';
import { BACKENDS } from '../helpers/services.js';
import { TestSmtp, tokenFrom } from '../helpers/smtp.js';
import { rfc6238 } from '../helpers/totp.js';
import { addUpstream, type CraftedIssuer, callbackOf, setUpstreamEnabled, startCraftedIssuer, startUpstream } from '../helpers/upstream.js';

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe.each(BACKENDS)('external sign-in with an OpenID provider (%s)', (backend) => {
  const smtp = new TestSmtp();
  let ours: ServedProvider;
  let peer: PeerProvider & { clientId: string };
  let crafted: CraftedIssuer;
  const emails = {
    fresh: uniqueEmail('fresh'),
    unverified: uniqueEmail('unverified'),
    linker: uniqueEmail('linker-upstream'),
    mfa: uniqueEmail('mfa-upstream'),
    rp: uniqueEmail('rp'),
    victim: uniqueEmail('victim'),
    attacks: uniqueEmail('attacks'),
    twin: uniqueEmail('twin'),
    unvouched: uniqueEmail('unvouched'),
  };

  beforeAll(async () => {
    await smtp.start();
    ours = await serveProvider(backend, { SMTP_URL: smtp.url, MAIL_PER_ADDRESS_PER_HOUR: '100' });
    peer = await startUpstream({
      publicUrl: ours.issuer,
      providerIds: ['peer', 'peer-off'],
      accounts: {
        fresh: { email: emails.fresh, name: 'Fresh Person' },
        unverified: { email: emails.unverified, email_verified: false },
        linker: { email: emails.linker },
        mfa: { email: emails.mfa },
        rp: { email: emails.rp },
        victim: { email: emails.victim },
        attacks: { email: emails.attacks },
        twin: { email: emails.twin },
        unvouched: { email: emails.unvouched, email_verified: false },
      },
    });
    await addUpstream(ours, { id: 'peer', name: 'Peer ID', issuer: peer.issuer, clientId: peer.clientId, trustEmailVerified: true });
    await addUpstream(ours, { id: 'peer-off', issuer: peer.issuer, clientId: peer.clientId });
    crafted = await startCraftedIssuer();
    await addUpstream(ours, { id: 'crafted', issuer: crafted.issuer, clientId: crafted.clientId });
  });
  afterAll(async () => {
    await crafted?.stop();
    await peer?.stop();
    await ours?.stop();
    await smtp.stop();
  });

  const url = (path: string) => `${ours.issuer}${path}`;
  /** From our start URL through the provider's login and consent, up to (not into) our callback. */
  const atProvider = (ua: UserAgent, account: string, start = '/auth/external/peer', id = 'peer') =>
    loginAtPeer(ua, url(start), account, callbackOf(ours.issuer, id));
  /** The callback requested: the page it ends on, or where it sends the browser (not requested). */
  const back = (ua: UserAgent, callback: URL | string) =>
    ua.get(callback, { stopAt: (u) => !(u.origin === ours.issuer && u.pathname.startsWith('/auth/external/')) });
  /** What the hosted pages do after such a sign-in: POST /session/tokens with the browser session. */
  async function tokensOf(ua: UserAgent) {
    const res = await ua.send(url('/session/tokens'), { method: 'POST', headers: { origin: ours.issuer, accept: 'application/json' } });
    return { status: res.status, body: res.status === 200 ? ((await res.json()) as { accessToken: string; refreshToken: string }) : null };
  }
  const me = (accessToken: string) => ours.call('GET', '/users/me', { token: accessToken });

  function expectPage(page: { status: number; headers: Headers; text: string }, status: number, code: string) {
    expect(page.status, page.text.slice(0, 400)).toBe(status);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.text).toContain(`<code>${code}</code>`);
  }

  it('makes an account on the first sign-in and signs the same account in the next time', async () => {
    const ua = new UserAgent();
    const end = await back(ua, await atProvider(ua, 'fresh'));
    expect(end.status).toBe(303);
    expect(new URL(end.url).pathname).toBe('/account');
    const pair = await tokensOf(ua);
    expect(pair.status).toBe(200);
    expect(claimsOf(pair.body!.accessToken).amr).toEqual(['fed']);
    const first = await me(pair.body!.accessToken);
    expect(first.body).toMatchObject({ email: emails.fresh, name: 'Fresh Person' });

    const other = new UserAgent();
    await back(other, await atProvider(other, 'fresh'));
    const again = await me((await tokensOf(other)).body!.accessToken);
    expect(again.body.id).toBe(first.body.id);
    // The refresh token of the pages' pair works like a login's.
    expect((await ours.call('POST', '/auth/refresh', { body: { refreshToken: pair.body!.refreshToken } })).status).toBe(200);
    // Without a browser session there is nothing to hand over.
    expect((await tokensOf(new UserAgent())).status).toBe(401);
  });

  it('makes an account with an address the provider did not vouch for unverified, and mails its verification link', async () => {
    const ua = new UserAgent();
    const end = await back(ua, await atProvider(ua, 'unvouched'));
    expect(end.status).toBe(303);
    const user = (await me((await tokensOf(ua)).body!.accessToken)).body;
    expect(user).toMatchObject({ email: emails.unvouched, emailVerified: false, hasPassword: false });
    const [mail] = await smtp.waitFor(emails.unvouched);
    expect(mail!.subject).toMatch(/Confirm your email address/);
    const token = /#token=([A-Za-z0-9_-]+)/.exec(mail!.text)?.[1];
    expect((await ours.call('POST', '/auth/verify-email', { body: { token } })).status).toBe(200);
  });

  it('signs two first sign-ins of the same new identity at once in to one account', async () => {
    const [a, b] = [new UserAgent(), new UserAgent()];
    const [ca, cb] = [await atProvider(a, 'twin'), await atProvider(b, 'twin')];
    const ends = await Promise.all([back(a, ca), back(b, cb)]);
    for (const end of ends) expect(end.status, end.text.slice(0, 300)).toBe(303);
    const [ta, tb] = [await tokensOf(a), await tokensOf(b)];
    const [ma, mb] = [await me(ta.body!.accessToken), await me(tb.body!.accessToken)];
    expect(ma.body.email).toBe(emails.twin);
    expect(mb.body.id).toBe(ma.body.id);
  });

  it('does not link a provider account whose email is not verified to the local account holding it, and says why', async () => {
    const local = await registerAndLogin(ours.call, { email: emails.unverified });
    const ua = new UserAgent();
    const page = await back(ua, await atProvider(ua, 'unverified'));
    expectPage(page, 403, 'identity_not_linked');
    expect(page.text).toContain('Sign in with your existing method, then link Peer ID from your account page');
    expect((await tokensOf(ua)).status).toBe(401);
    // Not believed, so nothing happened to the local account either.
    expect((await me(local.accessToken)).status).toBe(200);
  });

  it('links the provider from a signed-in browser session, mails the owner, and then signs that account in', async () => {
    const local = await registerAndLogin(ours.call);
    const ua = new UserAgent();
    // Without a session, linking asks to sign in.
    expectPage(await ua.get(url('/auth/external/peer?link=1')), 401, 'unauthenticated');
    await browserSignIn(ua, ours.issuer, { email: local.email, password: PASSWORD });
    const end = await back(ua, await atProvider(ua, 'linker', '/auth/external/peer?link=1'));
    expect(end.status).toBe(303);
    expect(new URL(end.url).pathname).toBe('/account');
    const notices = await smtp.waitFor(local.email, 2);
    expect(notices.some((m) => /Sign-in settings/.test(m.subject) && /Peer ID was linked/.test(m.text))).toBe(true);

    const elsewhere = new UserAgent();
    await back(elsewhere, await atProvider(elsewhere, 'linker'));
    expect((await me((await tokensOf(elsewhere)).body!.accessToken)).body.id).toBe(local.userId);

    // Another account cannot take the same identity.
    const someoneElse = await registerAndLogin(ours.call);
    const ua2 = new UserAgent();
    await browserSignIn(ua2, ours.issuer, { email: someoneElse.email, password: PASSWORD });
    expectPage(await back(ua2, await atProvider(ua2, 'linker', '/auth/external/peer?link=1')), 409, 'identity_in_use');
  });

  it('sends a user with a second factor to the MFA step, which ends with amr fed+otp', async () => {
    const local = await registerAndLogin(ours.call);
    const ua = new UserAgent();
    await browserSignIn(ua, ours.issuer, { email: local.email, password: PASSWORD });
    await back(ua, await atProvider(ua, 'mfa', '/auth/external/peer?link=1'));
    const enrol = await ours.call('POST', '/users/me/mfa/totp', { token: local.accessToken, body: { currentPassword: PASSWORD } });
    expect(enrol.status, enrol.text).toBe(200);
    const confirm = await ours.call('POST', '/users/me/mfa/totp/confirm', {
      token: local.accessToken,
      body: { code: rfc6238(enrol.body.secret, Date.now()) },
    });
    expect(confirm.status, confirm.text).toBe(200);

    const fresh = new UserAgent();
    const end = await back(fresh, await atProvider(fresh, 'mfa'));
    expect(end.status).toBe(303);
    const to = new URL(end.url);
    expect(to.pathname).toBe('/login');
    expect(to.searchParams.get('next')).toBe('/account');
    const fragment = new URLSearchParams(to.hash.slice(1));
    expect(fragment.get('methods')).toBe('totp,recovery_code');
    // No browser session before the second factor.
    expect((await tokensOf(fresh)).status).toBe(401);
    const verified = await ours.call('POST', '/auth/mfa/verify', {
      body: { mfaToken: fragment.get('mfa'), code: confirm.body.recoveryCodes[0] },
    });
    expect(verified.status, verified.text).toBe(200);
    expect(claimsOf(verified.body.accessToken).amr).toEqual(['fed', 'otp']);
    expect((await me(verified.body.accessToken)).body.id).toBe(local.userId);
  });

  it('resumes an OpenID authorization of this service: the client gets its code', async () => {
    const redirectUri = 'https://rp.example/cb';
    const rp = await createClientViaApi(ours, { redirectUris: [redirectUri], scopes: ['openid', 'email'] });
    const { challenge } = await pkce();
    const ua = new UserAgent();
    const q = new URLSearchParams({
      client_id: rp.id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'openid email',
      state: 'rp-state',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const login = await ua.get(url(`/oauth2/authorize?${q}`), { stopAt: (u) => u.pathname === '/login' });
    const next = new URL(login.url).searchParams.get('next')!;
    expect(next).toMatch(/^\/oauth2\/authorize\?interaction=/);
    const callback = await atProvider(ua, 'rp', `/auth/external/peer?next=${encodeURIComponent(next)}`);
    const stopAt = (u: URL) => u.href.startsWith(redirectUri);
    const toClient = await clickThrough(ua, await ua.get(callback, { stopAt }), stopAt, /allow/i);
    expect(toClient.searchParams.get('state')).toBe('rp-state');
    expect(toClient.searchParams.get('code')).toBeTruthy();
  });

  describe('attacks', () => {
    it('refuses a tampered state, a replayed callback and a callback in another browser', async () => {
      const ua = new UserAgent();
      const callback = await atProvider(ua, 'attacks');
      const tampered = new URL(callback);
      tampered.searchParams.set('state', 'A'.repeat(43));
      expectPage(await back(ua, tampered), 400, 'invalid_state');
      // The real one still works once.
      expect((await back(ua, callback)).status).toBe(303);
      expectPage(await back(ua, callback), 400, 'invalid_state');

      const victim = new UserAgent();
      const theirs = await atProvider(victim, 'attacks');
      // The callback URL carried to another browser (no flow cookie) is refused, and spent.
      expectPage(await back(new UserAgent(), theirs), 400, 'invalid_state');
      expectPage(await back(victim, theirs), 400, 'invalid_state');
    });

    it('finishes two sign-ins started at once in two tabs of one browser, each once', async () => {
      const ua = new UserAgent();
      const first = await atProvider(ua, 'attacks');
      const second = await atProvider(ua, 'attacks');
      for (const callback of [first, second]) {
        const end = await back(ua, callback);
        expect(end.status, end.text.slice(0, 300)).toBe(303);
        expect(new URL(end.url).pathname).toBe('/account');
      }
      expectPage(await back(ua, first), 400, 'invalid_state');
    });

    it('shows the provider’s refusal, its code only when well-formed', async () => {
      const ua = new UserAgent();
      const start = await ua.send(url('/auth/external/peer'));
      const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
      const page = await back(ua, url(`/auth/external/peer/callback?error=consent_required&state=${state}`));
      expectPage(page, 403, 'access_denied');
      expect(page.text).toContain('consent_required');
      const start2 = await ua.send(url('/auth/external/peer'));
      const state2 = new URL(start2.headers.get('location')!).searchParams.get('state')!;
      const hostile = await back(ua, url(`/auth/external/peer/callback?error=${encodeURIComponent('<script>x</script>')}&state=${state2}`));
      expectPage(hostile, 403, 'access_denied');
      expect(hostile.text).not.toContain('<script>');
    });

    it('refuses ID tokens of another issuer, for another audience, expired, with another nonce or signed by another key', async () => {
      crafted.flaw = 'none';
      const ok = await new UserAgent().get(url('/auth/external/crafted'), { stopAt: (u) => u.pathname === '/account' });
      expect(ok.status).toBe(303);
      // Its metadata lists client_secret_post only, so that is how the service authenticated.
      expect(crafted.tokenAuth.at(-1)).toBe('client_secret_post');
      for (const flaw of ['issuer', 'audience', 'expired', 'nonce', 'signature'] as const) {
        crafted.flaw = flaw;
        const ua = new UserAgent();
        const page = await ua.get(url('/auth/external/crafted'), { stopAt: (u) => u.pathname === '/account' });
        expect(`${flaw} ${page.status}`).toBe(`${flaw} 400`);
        expectPage(page, 400, 'upstream_invalid_response');
        expect((await tokensOf(ua)).status, flaw).toBe(401);
      }
      crafted.flaw = 'none';
    });

    it('keys a Microsoft Entra ID user on tid/oid, not on the per-app sub, and never links on its unverified email', async () => {
      const signIn = async (claims: Record<string, unknown>) => {
        crafted.claims = claims;
        const ua = new UserAgent();
        const end = await ua.get(url('/auth/external/crafted'), { stopAt: (u) => u.pathname === '/account' });
        return { end, pair: await tokensOf(ua) };
      };
      const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
      const email = uniqueEmail('entra');
      try {
        const first = await signIn({ sub: 'pairwise-for-app-a', tid: tenant, oid: 'object-1', email, email_verified: undefined });
        expect(first.end.status).toBe(303);
        const user = (await me(first.pair.body!.accessToken)).body;
        expect(user).toMatchObject({ email, emailVerified: false });
        // The same person under another pairwise sub (another app registration of the tenant): the same account.
        const again = await signIn({ sub: 'pairwise-for-app-b', tid: tenant, oid: 'object-1', email });
        expect((await me(again.pair.body!.accessToken)).body.id).toBe(user.id);
        // Another object of the tenant whose (unverified, editable) email claims that address: not that account (nOAuth).
        const other = await signIn({ sub: 'pairwise-for-app-a', tid: tenant, oid: 'object-2', email, email_verified: undefined });
        expectPage(other.end, 403, 'identity_not_linked');
      } finally {
        crafted.claims = {};
      }
    });

    it('refuses a provider disabled meanwhile, and an unknown one', async () => {
      const ua = new UserAgent();
      const callback = await atProvider(ua, 'attacks', '/auth/external/peer-off', 'peer-off');
      await setUpstreamEnabled(ours, { id: 'peer-off', issuer: peer.issuer, clientId: peer.clientId }, false);
      expectPage(await back(ua, callback), 404, 'idp_not_found');
      expectPage(await ua.get(url('/auth/external/peer-off')), 404, 'idp_not_found');
      expectPage(await ua.get(url('/auth/external/nobody')), 404, 'idp_not_found');
    });

    it('pre-hijack: a local account that never proved the email the provider proves is not linked, and loses its sessions and links', async () => {
      const squatter = await registerAndLogin(ours.call, { email: emails.victim });
      const verifyLink = tokenFrom((await smtp.waitFor(emails.victim))[0]!);
      const ua = new UserAgent();
      expectPage(await back(ua, await atProvider(ua, 'victim')), 403, 'identity_not_linked');
      expect((await me(squatter.accessToken)).status).toBe(401);
      expect((await ours.call('POST', '/auth/verify-email', { body: { token: verifyLink } })).status).toBe(400);
    });

    it('keeps state, codes and tokens out of the logs and the audit log', async () => {
      const ua = new UserAgent();
      const callback = await atProvider(ua, 'attacks');
      await back(ua, callback);
      const logs = ours.t.logs.text;
      for (const secret of [callback.searchParams.get('state')!, callback.searchParams.get('code')!]) expect(logs).not.toContain(secret);
    });
  });
});
