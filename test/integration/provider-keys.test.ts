// The OpenID provider's keys and metadata (docs/api.md "OpenID Connect provider"):
// the JWKS, the discovery document as a certification suite and a real relying
// party read it, development keys kept in DATA_DIR, production's key rules, and
// the API accepting the provider's access tokens for itself, on both backends.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, decodeProtectedHeader, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { discoveryDocument } from '../../src/provider/discovery.js';
import {
  atHash,
  providerTokenRevoked,
  signIdToken,
  signProviderAccessToken,
  verifyIdTokenHint,
  verifyProviderAccessToken,
} from '../../src/provider/jwt.js';
import { loadKeyRing } from '../../src/security/key-ring.js';
import { type ServedApp, startServedApp } from '../helpers/browser.js';
import { testConfig } from '../helpers/app.js';
import { read, registerAndLogin, type Session, typed, userWithRoles, loginAdmin } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTwoInstances } from '../helpers/two-instances.js';
import { useTestApp } from '../helpers/use-app.js';

const ISSUER = 'https://auth.example.test';
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
const pkcs8 = (key: ReturnType<typeof generateKeyPairSync>['privateKey']) => key.export({ format: 'pem', type: 'pkcs8' }).toString();

describe.each(BACKENDS)('the provider keys and metadata (%s)', (backend) => {
  const app = useTestApp(backend, { overrides: { PUBLIC_URL: ISSUER } });

  it('publishes every signing key (RSA, Ed25519, P-256) with its RFC 7638 kid, alg and use', async () => {
    const res = await app.call('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const keys = res.body.keys as (JWK & { kid: string; alg: string; use: string })[];
    expect(keys.map((k) => `${k.kty}/${k.alg}`).sort()).toEqual(['EC/ES256', 'OKP/EdDSA', 'RSA/RS256']);
    for (const k of keys) {
      expect(k.use).toBe('sig');
      expect(k.kid).toBe(await calculateJwkThumbprint(k));
      expect(k).not.toHaveProperty('d');
    }
    const rsa = keys.find((k) => k.kty === 'RSA')!;
    expect(Buffer.from(rsa.n!, 'base64url').length * 8).toBeGreaterThanOrEqual(2048);
    expect(rsa.e).toBe('AQAB');
  });

  it('oidcc-discovery-endpoint-verification: the metadata names the issuer, its endpoints under it, and reachable keys', async () => {
    const res = await app.call('GET', '/.well-known/openid-configuration', { headers: { origin: 'https://rp.example.test' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const doc = res.body;
    expect(doc.issuer).toBe(ISSUER);
    const endpoints = [
      'authorization_endpoint',
      'token_endpoint',
      'userinfo_endpoint',
      'end_session_endpoint',
      'revocation_endpoint',
      'introspection_endpoint',
      'jwks_uri',
    ];
    for (const name of endpoints) expect(doc[name], name).toMatch(new RegExp(`^${ISSUER.replace(/\./g, '\\.')}/`));
    expect(doc).toMatchObject({
      authorization_endpoint: `${ISSUER}/oauth2/authorize`,
      token_endpoint: `${ISSUER}/oauth2/token`,
      userinfo_endpoint: `${ISSUER}/oauth2/userinfo`,
      end_session_endpoint: `${ISSUER}/oauth2/logout`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      subject_types_supported: ['public'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      scopes_supported: ['openid', 'profile', 'email', 'roles', 'offline_access'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      code_challenge_methods_supported: ['S256'],
      prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
      claims_parameter_supported: false,
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
      authorization_response_iss_parameter_supported: true,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
    });
    expect(doc.id_token_signing_alg_values_supported).toEqual(['RS256', 'ES256', 'EdDSA']);
    expect(doc.claims_supported).toEqual(expect.arrayContaining(['sub', 'iss', 'auth_time', 'amr', 'sid', 'email', 'roles']));
    // The keys are where the document says (the issuer is this app's public origin).
    const jwks = await app.call('GET', new URL(doc.jwks_uri).pathname);
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys.length).toBeGreaterThanOrEqual(2);
    // RFC 8414: the same document at the authorization server's well-known name.
    const as = await app.call('GET', '/.well-known/oauth-authorization-server');
    expect(as.status).toBe(200);
    expect(as.body).toEqual(doc);
  });

  describe('the API and the provider access tokens', () => {
    let user: Session;
    let sid: string;
    const provider = (claims: { aud?: string[]; client_id?: string; roles?: string[] } = {}) =>
      signProviderAccessToken(app.t.services, {
        sub: user.userId,
        sid,
        client_id: 'notes-app',
        scope: 'openid profile',
        amr: ['pwd'],
        aud: ['auth-system'],
        ...claims,
      });
    const me = async (token: string) => read(await typed(app.t, { accessToken: token }).api.users.me.$get());

    beforeAll(async () => {
      user = await registerAndLogin(app.call);
      sid = claimsOf(user.accessToken).sid as string;
    });

    it('accepts an at+jwt whose aud includes JWT_AUDIENCE, as the user in that session', async () => {
      const token = await provider({ aud: ['https://notes.example.test', 'auth-system'] });
      expect(decodeProtectedHeader(token)).toMatchObject({ typ: 'at+jwt', alg: 'RS256' });
      const res = await me(token);
      expect(res.status).toBe(200);
      expect(res.body.id).toBe(user.userId);
    });

    it('refuses an at+jwt for another audience, and one this provider did not sign', async () => {
      for (const token of [
        await provider({ aud: ['https://notes.example.test'] }),
        await provider({ aud: [] }), // the default audience: the issuer, not the API
      ]) {
        const res = await me(token);
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('invalid_token');
        expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      }
      const token = await provider();
      const [h, p] = token.split('.');
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claimsOf(token), sub: randomUUID() })).toString('base64url')}.${token.split('.')[2]}`;
      expect((await me(forged)).status).toBe(401);
      expect(p).toBeTruthy();
    });

    it("judges it by the user's current roles, never the token's", async () => {
      const token = await provider({ roles: ['admin'] });
      const res = await read(await typed(app.t, { accessToken: token }).api.roles.$get());
      expect(res.status).toBe(403);
      const admin = await loginAdmin(app.call);
      const auditor = await userWithRoles(app.call, admin, ['admin']);
      const hisSid = claimsOf(auditor.accessToken).sid as string;
      const his = await signProviderAccessToken(app.t.services, {
        sub: auditor.userId,
        sid: hisSid,
        client_id: 'notes-app',
        scope: 'openid',
        aud: ['auth-system'],
      });
      expect((await read(await typed(app.t, { accessToken: his }).api.roles.$get())).status).toBe(200);
    });

    it('refuses an ID token in place of an access token, though the same key signed it', async () => {
      const idToken = await signIdToken(app.t.services, 'EdDSA', {
        sub: user.userId,
        aud: 'auth-system',
        sid,
        jti: randomUUID(),
        roles: [],
        amr: ['pwd'],
      });
      expect(decodeProtectedHeader(idToken).kid).toBe(decodeProtectedHeader(user.accessToken).kid);
      expect((await me(idToken)).status).toBe(401);
    });

    it("refuses the client's tokens in that session once revoked, and every token of a deleted client", async () => {
      const notes = await provider();
      const other = await provider({ client_id: 'photos-app' });
      const third = await provider({ client_id: 'calendar-app' });
      expect((await me(notes)).status).toBe(200);
      await app.t.services.tx(async (_tx, emit) => {
        await emit({ type: 'oauth.access_revoked', pairs: [{ sessionId: sid, clientId: 'notes-app' }] });
      });
      const refused = await me(notes);
      expect(refused.status).toBe(401);
      expect(refused.body.code).toBe('invalid_token');
      expect((await me(other)).status).toBe(200);
      // A token of that client issued after the revocation is refused too (the tombstone outlives them all).
      expect((await me(await provider())).status).toBe(401);

      await app.t.services.tx(async (_tx, emit) => {
        await emit({ type: 'oauth.client_changed', clientId: 'photos-app', deleted: true });
      });
      expect((await me(other)).status).toBe(401);
      // A client whose secret changed: its users' tokens still work.
      await app.t.services.tx(async (_tx, emit) => {
        await emit({ type: 'oauth.client_changed', clientId: 'calendar-app', deleted: false, at: app.t.services.clock() });
      });
      expect((await me(third)).status).toBe(200);
    });

    it('refuses it once the session has ended, like the session’s own tokens', async () => {
      const other = await registerAndLogin(app.call);
      const otherSid = claimsOf(other.accessToken).sid as string;
      const token = await signProviderAccessToken(app.t.services, {
        sub: other.userId,
        sid: otherSid,
        client_id: 'notes-app',
        scope: 'openid',
        aud: ['auth-system'],
      });
      expect((await me(token)).status).toBe(200);
      expect((await read(await typed(app.t, other).api.auth.logout.$post({ json: { refreshToken: other.refreshToken } }))).status).toBe(
        204,
      );
      expect((await me(token)).status).toBe(401);
    });
  });

  it('tells userinfo and introspection which provider tokens the tombstones refuse', async () => {
    const svc = app.t.services;
    const sid = randomUUID();
    const verified = async (claims: { client_id: string; sid?: string }) =>
      (await verifyProviderAccessToken(svc, await signProviderAccessToken(svc, { sub: randomUUID(), scope: 'openid', ...claims })))!;
    const user = await verified({ client_id: 'wiki-app', sid });
    const service = await verified({ client_id: 'batch-app' });
    expect(await providerTokenRevoked(svc, user)).toBe(false);
    expect(await providerTokenRevoked(svc, service)).toBe(false);
    await svc.tx(async (_tx, emit) => {
      await emit({ type: 'oauth.access_revoked', pairs: [{ sessionId: sid, clientId: 'wiki-app' }] });
      // The service client's secret changed a second after its token was issued.
      await emit({ type: 'oauth.client_changed', clientId: 'batch-app', deleted: false, at: (service.iat + 1) * 1000 });
    });
    expect(await providerTokenRevoked(svc, user)).toBe(true);
    expect(await providerTokenRevoked(svc, service)).toBe(true);
    expect(await providerTokenRevoked(svc, await verified({ client_id: 'wiki-app', sid: randomUUID() }))).toBe(false);
  });

  it('signs ID tokens with each offered algorithm, and checks a hint by signature and issuer but not expiry', async () => {
    const svc = app.t.services;
    const at = await signProviderAccessToken(svc, { sub: randomUUID(), client_id: 'notes-app', scope: 'openid' });
    expect(await verifyProviderAccessToken(svc, at)).toMatchObject({ iss: ISSUER, aud: [ISSUER], client_id: 'notes-app' });
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      const iat = Math.floor(Date.now() / 1000) - 7200;
      const idToken = await signIdToken(svc, alg, { sub: 'u1', aud: 'notes-app', sid: 's1', iat, exp: iat + 60, at_hash: atHash(alg, at) });
      const { payload, protectedHeader } = await import('jose').then(async (jose) => {
        const set = jose.createLocalJWKSet((await app.call('GET', '/.well-known/jwks.json')).body);
        return jose.jwtVerify(idToken, set, { issuer: ISSUER, audience: 'notes-app', currentDate: new Date((iat + 1) * 1000) });
      });
      expect(protectedHeader).toMatchObject({ alg, typ: 'JWT' });
      expect(payload).toMatchObject({ azp: 'notes-app', at_hash: atHash(alg, at) });
      // Expired two hours ago: still a valid hint.
      expect(await verifyIdTokenHint(svc, idToken)).toMatchObject({ sub: 'u1', aud: ['notes-app'], sid: 's1' });
    }
    expect(atHash('RS256', at)).toHaveLength(22);
    expect(atHash('EdDSA', at)).toHaveLength(43);
    // An access token is no ID token, and a tampered one is nothing.
    expect(await verifyIdTokenHint(svc, at)).toBeNull();
    const idToken = await signIdToken(svc, 'RS256', { sub: 'u1', aud: 'notes-app' });
    const [h, , s] = idToken.split('.');
    expect(await verifyIdTokenHint(svc, `${h}.${Buffer.from('{"sub":"u2","iss":"x"}').toString('base64url')}.${s}`)).toBeNull();
    expect(await verifyIdTokenHint(svc, 'not.a.jwt')).toBeNull();
  });
});

describe('provider access tokens across instances (Redis)', () => {
  const two = useTwoInstances({ overrides: { PUBLIC_URL: ISSUER } });

  it('a revocation or a client deletion on one instance is refused on the other at the next request', async () => {
    const user = await registerAndLogin(two.callA);
    const sid = claimsOf(user.accessToken).sid as string;
    const token = (clientId: string) =>
      signProviderAccessToken(two.a.services, { sub: user.userId, sid, client_id: clientId, scope: 'openid', aud: ['auth-system'] });
    const onB = async (t: string) => (await read(await typed(two.b, { accessToken: t }).api.users.me.$get())).status;
    const notes = await token('notes-app');
    const photos = await token('photos-app');
    expect(await onB(notes)).toBe(200);
    expect(await onB(photos)).toBe(200);
    await two.a.services.tx(async (_tx, emit) => {
      await emit({ type: 'oauth.access_revoked', pairs: [{ sessionId: sid, clientId: 'notes-app' }] });
      await emit({ type: 'oauth.client_changed', clientId: 'photos-app', deleted: true });
    });
    expect(await onB(notes)).toBe(401);
    expect(await onB(photos)).toBe(401);
    expect(await onB(await token('calendar-app'))).toBe(200);
  });
});

describe('provider keys at start', () => {
  it('generates the RSA and P-256 keys once into DATA_DIR (0600) and keeps them over a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'provider-keys-'));
    const config = testConfig({ DATA_DIR: dir });
    const first = await loadKeyRing({ privateKey: undefined, publicKeys: undefined, dataDir: dir });
    const token = await signProviderAccessToken({ keyRing: first, config, clock: Date.now }, { sub: 'c', client_id: 'c', scope: '' });
    const second = await loadKeyRing({ privateKey: undefined, publicKeys: undefined, dataDir: dir });
    expect(second.jwks).toEqual(first.jwks);
    expect(second.provider.signing.ES256?.kid).toBe(first.provider.signing.ES256?.kid);
    expect(await verifyProviderAccessToken({ keyRing: second, config, clock: Date.now }, token)).not.toBeNull();
    for (const file of ['jwt-rsa-private.pem', 'jwt-ec-private.pem']) expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
  });

  it('in production: refuses to start without JWT_RSA_PRIVATE_KEY or with one under 2048 bits; without JWT_EC_PRIVATE_KEY offers no ES256', async () => {
    const prod = {
      NODE_ENV: 'production',
      PUBLIC_URL: ISSUER,
      SMTP_URL: 'smtp://mail.example.test',
      METRICS_TOKEN: 'a-metrics-token-of-length',
      MFA_ENCRYPTION_KEY: 'a'.repeat(64),
      JWT_PRIVATE_KEY: pkcs8(generateKeyPairSync('ed25519').privateKey),
    };
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        if (err instanceof ConfigError) return err.problems;
        throw err;
      }
    };
    expect(problems(prod)).toEqual([expect.stringMatching(/^JWT_RSA_PRIVATE_KEY: required when NODE_ENV=production/)]);
    const small = pkcs8(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey);
    expect(problems({ ...prod, JWT_RSA_PRIVATE_KEY: small })).toEqual([
      'JWT_RSA_PRIVATE_KEY: an RSA key of 1024 bits: 2048 or more needed',
    ]);
    expect(problems({ ...prod, JWT_RSA_PRIVATE_KEY: prod.JWT_PRIVATE_KEY })).toEqual(['JWT_RSA_PRIVATE_KEY: must be an RSA private key']);

    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const config = loadConfig({ ...prod, JWT_RSA_PRIVATE_KEY: JSON.stringify(rsa.export({ format: 'jwk' })) });
    const dir = mkdtempSync(join(tmpdir(), 'provider-keys-'));
    const ring = await loadKeyRing({ ...config.jwt, production: true, dataDir: dir });
    expect(ring.provider.signing.ES256).toBeUndefined();
    expect(discoveryDocument({ config, keyRing: ring }).id_token_signing_alg_values_supported).toEqual(['RS256', 'EdDSA']);
    expect(ring.jwks.keys.map((k) => k.alg).sort()).toEqual(['EdDSA', 'RS256']);
  });
});

describe('a relying party reads the metadata', () => {
  let served: ServedApp;
  beforeAll(async () => {
    served = await startServedApp();
  });
  afterAll(async () => {
    await served?.stop();
  });

  it("openid-client's discovery() accepts the issuer and finds its keys", async () => {
    const config = await oidc.discovery(new URL(served.origin), 'notes-app', undefined, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(served.origin);
    expect(meta.token_endpoint).toBe(`${served.origin}/oauth2/token`);
    expect(meta.id_token_signing_alg_values_supported?.[0]).toBe('RS256');
    const jwks = await fetch(meta.jwks_uri!);
    expect(jwks.status).toBe(200);
  });
});
