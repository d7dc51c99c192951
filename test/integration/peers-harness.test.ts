// The harnesses for real relying parties, proven against a known-good provider
// (oidc-provider, the certified Node one, in process): the cookie-jar user agent
// drives an authorization-code flow through its sign-in and consent forms, and
// Apache's mod_auth_openidc signs a user in and shows the protected page. The
// same harnesses then run against this service's provider (oidc-rp.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apacheRedirectUri, apacheUnavailable, startApache } from '../helpers/apache.js';
import { loginAtPeer, type PeerProvider, pkcePair, startOidcProvider, UserAgent } from '../helpers/oidc-peers.js';
import { freePort } from '../helpers/processes.js';

const SECRET = 'a-secret-long-enough-for-hs256-0123456789';
const APP_REDIRECT = 'http://127.0.0.1:1/callback';

describe('relying-party harnesses against oidc-provider', () => {
  let op: PeerProvider;
  let apachePort: number;

  beforeAll(async () => {
    apachePort = await freePort();
    op = await startOidcProvider({
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [APP_REDIRECT] },
        { client_id: 'apache', client_secret: SECRET, redirect_uris: [apacheRedirectUri(apachePort)] },
      ],
      accounts: { 'user-1': { email: 'ada@example.test', name: 'Ada' } },
    });
  });
  afterAll(async () => {
    await op?.stop();
  });

  it('the user agent signs in, consents, and the code becomes tokens and userinfo', async () => {
    const ua = new UserAgent();
    const { verifier, challenge } = await pkcePair();
    const authorize = new URL(`${op.issuer}/auth`);
    authorize.search = new URLSearchParams({
      client_id: 'app',
      redirect_uri: APP_REDIRECT,
      response_type: 'code',
      scope: 'openid email offline_access',
      prompt: 'consent',
      state: 's1',
      nonce: 'n1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    const back = await loginAtPeer(ua, authorize, 'user-1', APP_REDIRECT);
    expect(back.searchParams.get('state')).toBe('s1');
    const code = back.searchParams.get('code');
    expect(code).toBeTruthy();

    const basic = `Basic ${Buffer.from(`app:${SECRET}`).toString('base64')}`;
    const token = await fetch(`${op.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: code!, redirect_uri: APP_REDIRECT, code_verifier: verifier }),
    });
    expect(token.status).toBe(200);
    const tokens = (await token.json()) as { access_token: string; refresh_token?: string; id_token: string };
    expect(tokens.refresh_token).toBeTruthy();
    const info = await fetch(`${op.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(await info.json()).toMatchObject({ sub: 'user-1', email: 'ada@example.test' });

    // The browser session stays: the next authorization needs no form.
    const again = new URL(authorize);
    again.searchParams.delete('prompt');
    again.searchParams.set('scope', 'openid email');
    const page = await ua.get(again, { stopAt: (u) => u.href.startsWith(APP_REDIRECT) });
    expect(new URL(page.url).searchParams.get('code')).toBeTruthy();
  });

  const noApache = apacheUnavailable();
  it.skipIf(noApache !== null)(
    `Apache mod_auth_openidc signs the user in and shows the protected page${noApache ? ` (${noApache})` : ''}`,
    async () => {
      const apache = await startApache({ issuer: op.issuer, clientId: 'apache', clientSecret: SECRET, port: apachePort });
      try {
        const ua = new UserAgent();
        const first = await ua.get(apache.protectedUrl, { stopAt: (u) => u.origin === op.issuer });
        // The module sends the browser to the provider with PKCE (S256).
        const authorize = new URL(first.url);
        expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
        expect(authorize.searchParams.get('redirect_uri')).toBe(apache.redirectUri);
        const back = await loginAtPeer(ua, authorize, 'user-1', apache.redirectUri);
        const page = await ua.get(back);
        expect(page.status, apache.errorLog()).toBe(200);
        expect(page.url).toBe(apache.protectedUrl);
        expect(page.text).toContain('REMOTE_USER=user-1');
        expect(page.text).toContain('EMAIL=ada@example.test');

        // The module's session cookie now stands for the sign-in.
        const again = await ua.get(apache.protectedUrl, { stopAt: (u) => u.origin === op.issuer });
        expect(again.status).toBe(200);
        expect(again.text).toContain('REMOTE_USER=user-1');
      } finally {
        await apache.stop();
      }
    },
  );
});
