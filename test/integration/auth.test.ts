// Identity and tokens (docs/api.md "Auth" and "Users", /users/me), on both database backends.
import { createPublicKey, createHmac, verify as cryptoVerify, randomUUID, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { users } from '../../src/db/schema.js';
import { hashPassword } from '../../src/security/passwords.js';
import { signAccessToken } from '../../src/security/access-tokens.js';
import { buildKeyRing } from '../../src/security/key-ring.js';
import { storeKeys } from '../../src/store/store.js';
import { ADMIN } from '../helpers/app.js';
import { login, loginAdmin, PASSWORD, read, registerAndLogin, typed, uniqueEmail } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const decode = (jwt: string) => ({
  header: JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()),
  payload: JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()),
});

describe.each(BACKENDS)('identity and tokens on %s', (backend) => {
  let now = Date.now();
  const app = useTestApp(backend, { clock: () => now });
  const { call } = app;
  // Requests a well-formed client sends go through the typed client (over app.request()), so a
  // change to these routes breaks this file at compile time; forged tokens and bad bodies stay raw.
  const t = (s?: { accessToken: string }) => typed(app.t, s);
  const register = async (json: { email: string; password: string; name: string }) => read(await t().api.auth.register.$post({ json }));
  const refresh = async (refreshToken: string) => read(await t().api.auth.refresh.$post({ json: { refreshToken } }));
  const logout = async (refreshToken: string) => read(await t().api.auth.logout.$post({ json: { refreshToken } }));
  const me = async (s?: { accessToken: string }) => read(await t(s).api.users.me.$get());
  const updateMe = async (
    s: { accessToken: string },
    json: { name?: string; email?: string; password?: string; currentPassword?: string },
  ) => read(await t(s).api.users.me.$put({ json }));
  const keySet = async () => read(await t().api['.well-known']['jwks.json'].$get());

  describe('register', () => {
    it('creates a user with the user role, email trimmed and lower-cased, no hash in the answer', async () => {
      const email = uniqueEmail('Reg');
      const res = await register({ email: `  ${email.toUpperCase()} `, password: PASSWORD, name: 'Ann' });
      expect(res.status).toBe(201);
      expect(res.body.user).toMatchObject({ email: email.toLowerCase(), name: 'Ann', roles: ['user'] });
      expect(Object.keys(res.body.user).sort()).toEqual(['createdAt', 'email', 'emailVerified', 'id', 'mfa', 'name', 'roles', 'updatedAt']);
      expect(res.body.user).toMatchObject({ emailVerified: false, mfa: { totp: false, passkeys: 0 } });
      expect(res.text).not.toContain('argon2');
    });

    it('refuses a taken email with 409 email_taken', async () => {
      const email = uniqueEmail();
      await register({ email, password: PASSWORD, name: 'A' });
      const again = await register({ email: email.toUpperCase(), password: PASSWORD, name: 'B' });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('email_taken');
    });

    it('gives exactly one 201 for 20 parallel registrations of one email, email_taken to the rest', async () => {
      const email = uniqueEmail('race');
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => register({ email, password: PASSWORD, name: `Racer ${i}` })));
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      expect(results.filter((r) => r.status === 409)).toHaveLength(19);
      expect(results.filter((r) => r.status === 409).every((r) => r.body.code === 'email_taken')).toBe(true);
    });

    it('refuses common passwords and lengths outside 8–128 code points', async () => {
      for (const password of ['password1', 'iloveyou', '1234567', 'x'.repeat(129)]) {
        const res = await register({ email: uniqueEmail(), password, name: 'A' });
        expect(res.status, password).toBe(400);
        expect(res.body.code).toBe('validation_failed');
        expect(res.body.errors[0].path).toBe('password');
      }
      // Eight emoji are eight code points (sixteen UTF-16 units): accepted.
      const emoji = '🔑🦊🌲🚲🎻🍋🧭🪁';
      const ok = await register({ email: uniqueEmail(), password: emoji, name: 'E' });
      expect(ok.status).toBe(201);
    });
  });

  describe('login', () => {
    it('issues an EdDSA JWT with the contract claims and a kid from the JWKS', async () => {
      const s = await registerAndLogin(call);
      const res = await read(await t().api.auth.login.$post({ json: { email: s.email, password: PASSWORD } }));
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
      expect(Buffer.from(res.body.refreshToken, 'base64url').length).toBeGreaterThanOrEqual(32);
      const { header, payload } = decode(res.body.accessToken);
      expect(header).toMatchObject({ alg: 'EdDSA', typ: 'JWT', kid: expect.any(String) });
      expect(Object.keys(payload).sort()).toEqual(['amr', 'aud', 'exp', 'iat', 'iss', 'jti', 'roles', 'sid', 'sub']);
      expect(payload).toMatchObject({ iss: 'auth-system', aud: 'auth-system', sub: s.userId, roles: ['user'], amr: ['pwd'] });
      expect(payload.exp - payload.iat).toBe(900);
    });

    it('verifies with the published JWKS using only node:crypto', async () => {
      const s = await registerAndLogin(call);
      const jwks = await keySet();
      expect(jwks.status).toBe(200);
      const [h, p, sig] = s.accessToken.split('.') as [string, string, string];
      const jwk = jwks.body.keys.find((k: { kid: string }) => k.kid === decode(s.accessToken).header.kid);
      expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      expect(jwk.d).toBeUndefined();
      const key = createPublicKey({ key: jwk, format: 'jwk' });
      expect(cryptoVerify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url'))).toBe(true);
    });

    it('answers a wrong password and an unknown email with the same 401 body', async () => {
      const s = await registerAndLogin(call);
      const wrongPw = await read(await t().api.auth.login.$post({ json: { email: s.email, password: 'not-the-password' } }));
      const noUser = await read(await t().api.auth.login.$post({ json: { email: uniqueEmail('ghost'), password: 'not-the-password' } }));
      for (const r of [wrongPw, noUser]) {
        expect(r.status).toBe(401);
        expect(r.body.code).toBe('invalid_credentials');
      }
      const strip = (b: Record<string, unknown>) => ({ ...b, requestId: undefined });
      expect(strip(wrongPw.body)).toEqual(strip(noUser.body));
    });

    it('re-hashes a stored hash made with older parameters on the next login', async () => {
      const email = uniqueEmail();
      await register({ email, password: PASSWORD, name: 'Old' });
      const old = await hashPassword(PASSWORD, { memoryCost: 512, timeCost: 1, parallelism: 1 });
      await app.t.deps.database.db.update(users).set({ passwordHash: old }).where(eq(users.email, email));
      await login(call, email, PASSWORD);
      const [row] = await app.t.deps.database.db.select().from(users).where(eq(users.email, email));
      expect(row!.passwordHash).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
      await login(call, email, PASSWORD); // and the new hash still verifies
    });
  });

  describe('access tokens', () => {
    it('rejects forged, tampered, expired and foreign tokens with 401 invalid_token, also on guest routes', async () => {
      const s = await registerAndLogin(call);
      const { header, payload } = decode(s.accessToken);
      const [h, , sig] = s.accessToken.split('.') as [string, string, string];
      const jwk = (await keySet()).body.keys[0];
      const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString();
      const hs = (secret: string) => {
        const head = `${b64({ alg: 'HS256', typ: 'JWT', kid: header.kid })}.${b64(payload)}`;
        return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
      };
      const other = await buildKeyRing(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
      const signWith = (claims: Record<string, unknown>, ring = app.t.deps.keyRing) => signAccessToken(ring, { ...payload, ...claims });
      const attacks: Record<string, string> = {
        'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`,
        'HS256 with the public key as secret': hs(pem),
        'HS256 with the JWK x as secret': hs(jwk.x),
        'tampered payload': `${h}.${b64({ ...payload, roles: ['admin'], sub: randomUUID() })}.${sig}`,
        expired: await signWith({ iat: payload.iat - 3600, exp: payload.iat - 1800 }),
        'wrong issuer': await signWith({ iss: 'someone-else' }),
        'wrong audience': await signWith({ aud: 'another-api' }),
        'unknown kid': await signWith({}, other),
        garbage: 'not.a.jwt',
        'two parts': `${h}.${sig}`,
        'issued in the future': await signWith({ iat: payload.iat + 3600, exp: payload.iat + 3600 + 900 }),
        'a longer life than access tokens get': await signWith({ exp: payload.iat + 900 + 3600 }),
        'sub not a UUID': await signWith({ sub: 'not-a-uuid' }),
        'sid not a UUID': await signWith({ sid: "x' or '1'='1" }),
        // One signature, other spellings of it (RFC 7515 compact form is unpadded base64url).
        'padded signature': `${s.accessToken}==`,
        'one pad character': `${s.accessToken}=`,
        'standard base64 alphabet': `${h}.${s.accessToken.split('.')[1]}.${Buffer.from(sig, 'base64url').toString('base64')}`,
        'stray low bits in the last character': `${h}.${s.accessToken.split('.')[1]}.${sig.slice(0, -1)}${B64URL[B64URL.indexOf(sig.at(-1)!) ^ 1]}`,
        'padded header': `${h}==.${s.accessToken.split('.')[1]}.${sig}`,
      };
      for (const [name, token] of Object.entries(attacks)) {
        for (const path of ['/users/me', '/posts']) {
          const res = await call('GET', path, { token });
          expect(res.status, `${name} on ${path}`).toBe(401);
          expect(res.body.code, name).toBe('invalid_token');
          expect(res.headers.get('www-authenticate')).toContain('Bearer');
        }
      }
      expect((await me(s)).status).toBe(200);
    });

    it('honours expiry by the clock', async () => {
      const s = await registerAndLogin(call);
      expect((await me(s)).status).toBe(200);
      const saved = now;
      now += 901_000 + 30_000;
      try {
        expect((await me(s)).body.code).toBe('invalid_token');
      } finally {
        now = saved;
      }
    });

    it('answers a missing token on a signed-in route with 401 unauthenticated and WWW-Authenticate', async () => {
      const res = await me();
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('unauthenticated');
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    });
  });

  describe('refresh and logout', () => {
    it('rotates: the new pair works and the presented token is spent', async () => {
      const s = await registerAndLogin(call);
      const r1 = await refresh(s.refreshToken);
      expect(r1.status).toBe(200);
      expect(r1.body.refreshToken).not.toBe(s.refreshToken);
      expect(decode(r1.body.accessToken).payload.sid).toBe(decode(s.accessToken).payload.sid);
      expect((await me({ accessToken: r1.body.accessToken })).status).toBe(200);
    });

    it('a spent refresh token revokes its whole session', async () => {
      const s = await registerAndLogin(call);
      const r1 = await refresh(s.refreshToken);
      const reuse = await refresh(s.refreshToken);
      expect(reuse.status).toBe(401);
      expect(reuse.body.code).toBe('refresh_token_reused');
      // The newest refresh token and every access token of the session are dead.
      expect((await refresh(r1.body.refreshToken)).body.code).toBe('invalid_refresh_token');
      expect((await me({ accessToken: r1.body.accessToken })).body.code).toBe('invalid_token');
      expect((await me(s)).body.code).toBe('invalid_token');
      // Other sessions of the same user live on.
      const other = await login(call, s.email, PASSWORD);
      expect((await me(other)).status).toBe(200);
    });

    it('lets exactly one of 50 parallel refreshes of one token succeed, and the reuse revokes the session', async () => {
      const s = await registerAndLogin(call);
      const results = await Promise.all(Array.from({ length: 50 }, () => refresh(s.refreshToken)));
      const ok = results.filter((r) => r.status === 200);
      expect(ok).toHaveLength(1);
      expect(results.filter((r) => r.status === 401)).toHaveLength(49);
      expect(results.filter((r) => r.status === 401).every((r) => r.body.code === 'refresh_token_reused')).toBe(true);
      // The reuse revoked the session: even the winner's new tokens are dead.
      expect((await me({ accessToken: ok[0]!.body.accessToken })).status).toBe(401);
      expect((await refresh(ok[0]!.body.refreshToken)).status).toBe(401);
    });

    it('answers an unknown or expired refresh token with 401 invalid_refresh_token', async () => {
      expect((await refresh('nope')).body.code).toBe('invalid_refresh_token');
      const s = await registerAndLogin(call);
      const saved = now;
      now += 2_592_000_000 + 1000;
      try {
        expect((await refresh(s.refreshToken)).body.code).toBe('invalid_refresh_token');
      } finally {
        now = saved;
      }
    });

    it('logout ends the session (access and refresh tokens) and is idempotent', async () => {
      const s = await registerAndLogin(call);
      expect((await logout(s.refreshToken)).status).toBe(204);
      expect((await me(s)).body.code).toBe('invalid_token');
      expect((await refresh(s.refreshToken)).body.code).toBe('invalid_refresh_token');
      expect((await logout(s.refreshToken)).status).toBe(204);
      expect((await logout('never-issued')).status).toBe(204);
    });

    it('judges a revoked session by the database when the store has lost its entry', async () => {
      const s = await registerAndLogin(call);
      const other = await login(call, s.email, PASSWORD);
      expect((await logout(s.refreshToken)).status).toBe(204);
      // A store emptied or evicted: nothing says "revoked" any more; the database still does.
      await app.t.deps.store.del(storeKeys.session(decode(s.accessToken).payload.sid));
      expect((await me(s)).body.code).toBe('invalid_token');
      await app.t.deps.store.del(storeKeys.session(decode(other.accessToken).payload.sid));
      expect((await me(other)).status).toBe(200);
    });

    it('refuses a token whose sid is another user’s live session, even while the store says that session is alive', async () => {
      const victim = await registerAndLogin(call);
      const s = await registerAndLogin(call);
      expect((await me(victim)).status).toBe(200);
      const mixed = await signAccessToken(app.t.deps.keyRing, {
        ...decode(s.accessToken).payload,
        sid: decode(victim.accessToken).payload.sid,
      });
      const res = await me({ accessToken: mixed });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('invalid_token');
    });

    it('refuses refresh to a user without auth:refresh (guest only) with 403', async () => {
      const s = await registerAndLogin(call);
      const admin = await loginAdmin(call);
      expect((await t(admin).api.users[':id'].roles.$put({ param: { id: s.userId }, json: { roles: ['guest'] } })).status).toBe(200);
      const res = await refresh(s.refreshToken);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      // A suspended user signs in only to guest rights.
      const again = await login(call, s.email, PASSWORD);
      expect((await me(again)).status).toBe(403);
      expect((await t(again).api.posts.$get({ query: {} })).status).toBe(200);
    });
  });

  describe('/users/me', () => {
    it('returns the profile with sorted effective permissions', async () => {
      const s = await registerAndLogin(call);
      const res = await me(s);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: s.userId, email: s.email, roles: ['user'] });
      expect(res.body.permissions).toEqual([
        'auth:refresh',
        'auth:register',
        'posts:create',
        'posts:delete:own',
        'posts:read',
        'profile:read',
        'profile:update',
      ]);
      expect(res.body.passwordHash).toBeUndefined();
    });

    it('refuses unknown fields such as roles with 400', async () => {
      const s = await registerAndLogin(call);
      const res = await call('PUT', '/users/me', { token: s.accessToken, body: { roles: ['admin'] } });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect((await me(s)).body.roles).toEqual(['user']);
    });

    it('changes the name freely, the email and password only with the current password', async () => {
      const s = await registerAndLogin(call);
      const named = await updateMe(s, { name: 'New Name' });
      expect(named.status).toBe(200);
      expect(named.body.name).toBe('New Name');
      expect((await me(s)).body).toMatchObject({
        name: 'New Name',
        updatedAt: named.body.updatedAt,
      });
      const missing = await updateMe(s, { email: uniqueEmail() });
      expect(missing.status).toBe(403);
      expect(missing.body.code).toBe('current_password_required');
      const wrong = await updateMe(s, { password: 'another-passphrase-77', currentPassword: 'wrong-one' });
      expect(wrong.status).toBe(403);
      expect(wrong.body.code).toBe('invalid_credentials');
      const newEmail = uniqueEmail();
      const moved = await updateMe(s, { email: newEmail, currentPassword: PASSWORD });
      expect(moved.status).toBe(200);
      expect(moved.body.email).toBe(newEmail);
      const taken = await updateMe(s, { email: ADMIN.email, currentPassword: PASSWORD });
      expect(taken.status).toBe(409);
      expect(taken.body.code).toBe('email_taken');
    });

    it('a password change ends every other session of the user', async () => {
      const s = await registerAndLogin(call);
      const other = await login(call, s.email, PASSWORD);
      const res = await updateMe(s, { password: 'brand-new-passphrase-31', currentPassword: PASSWORD });
      expect(res.status).toBe(200);
      expect((await me(other)).body.code).toBe('invalid_token');
      expect((await refresh(other.refreshToken)).body.code).toBe('invalid_refresh_token');
      expect((await me(s)).status).toBe(200);
      await login(call, s.email, 'brand-new-passphrase-31');
    });
  });

  it('never writes passwords, hashes or tokens to the log', async () => {
    const s = await registerAndLogin(call);
    await read(await t().api.auth.login.$post({ json: { email: s.email, password: 'wrong-password-xyz' } }));
    await refresh(s.refreshToken);
    await refresh(s.refreshToken);
    await me(s);
    const other = await login(call, s.email, PASSWORD);
    await logout(other.refreshToken);
    await logout(other.refreshToken);
    await app.t.stop(); // flush audit and counters, which may log
    const logs = app.t.logs.text;
    // The capture works: every request above left a line.
    expect(logs).toContain('"action":"auth.refresh"');
    expect(logs).toContain('"detail":"refresh_token_reused"');
    expect(logs).toContain('"action":"auth.logout"');
    for (const secret of [
      PASSWORD,
      'wrong-password-xyz',
      s.refreshToken,
      s.accessToken,
      s.accessToken.split('.')[2]!,
      other.refreshToken,
      other.accessToken.split('.')[2]!,
      '$argon2id$',
    ]) {
      expect(logs).not.toContain(secret);
    }
  });
});
