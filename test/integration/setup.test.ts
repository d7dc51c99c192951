// First run (docs/api.md "POST /setup/admin"): the setup token in DATA_DIR and
// the first admin made with it, on both database backends.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createFirstAdmin, prepareSetupToken } from '../../src/modules/setup/setup.service.js';
import type { Database } from '../../src/db/connect.js';
import { createTestApp, testConfig, testRsaKey, type TestApp } from '../helpers/app.js';
import { client, login, loginAdmin, PASSWORD, registerAndLogin, uniqueEmail, userWithRoles } from '../helpers/http.js';
import { BACKENDS, openDatabase } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

/** testConfig sets a bootstrap admin; empty values unset it. */
const NO_BOOTSTRAP = { BOOTSTRAP_ADMIN_EMAIL: '', BOOTSTRAP_ADMIN_PASSWORD: '' };

const adminBody = (token: string, email = uniqueEmail('first')) => ({ token, email, password: PASSWORD, name: 'First Admin' });

describe.each(BACKENDS)('first run on %s', (backend) => {
  describe('while no admin exists', () => {
    const app = useTestApp(backend, { overrides: NO_BOOTSTRAP });
    const { call } = app;
    let path: string | null;
    let token: string;

    beforeAll(async () => {
      path = await prepareSetupToken(app.t.deps);
      token = readFileSync(path!, 'utf8').trim();
    });

    it('writes a one-time token of 256 bits to DATA_DIR/setup-token (0600) and logs the path, never the token', async () => {
      expect(path).toBe(join(app.t.deps.config.dataDir, 'setup-token'));
      expect(statSync(path!).mode & 0o777).toBe(0o600);
      expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(32);
      expect(app.t.logs.text).toContain(path);
      expect(app.t.logs.text).not.toContain(token);
      // Another start before setup is done keeps the same token.
      expect(await prepareSetupToken(app.t.deps)).toBe(path);
      expect(readFileSync(path!, 'utf8').trim()).toBe(token);
    });

    it('refuses a wrong token with 403 forbidden', async () => {
      for (const wrong of [randomBytes(32).toString('base64url'), `${token}x`, token.slice(0, -1), 'x']) {
        const res = await call('POST', '/setup/admin', { body: adminBody(wrong) });
        expect([res.status, res.body.code]).toEqual([403, 'forbidden']);
      }
      expect(existsSync(path!)).toBe(true);
    });

    it('holds the password to the register rules', async () => {
      const short = await call('POST', '/setup/admin', { body: { ...adminBody(token), password: 'short' } });
      expect([short.status, short.body.code]).toEqual([400, 'validation_failed']);
      expect(short.body.errors).toContainEqual({ path: 'password', message: expect.any(String) });
      const common = await call('POST', '/setup/admin', { body: { ...adminBody(token), password: 'password123' } });
      expect([common.status, common.body.code]).toEqual([400, 'validation_failed']);
      const extra = await call('POST', '/setup/admin', { body: { ...adminBody(token), roles: ['admin'] } });
      expect([extra.status, extra.body.code]).toEqual([400, 'validation_failed']);
    });

    it('creates the first admin with the right token; then the token file is gone and the route answers 404', async () => {
      const email = uniqueEmail('first');
      const res = await call('POST', '/setup/admin', { body: adminBody(token, email.toUpperCase()) });
      expect(res.status).toBe(201);
      expect(res.body.user).toMatchObject({ email, emailVerified: true, name: 'First Admin', roles: ['admin'] });
      expect(res.body.user).not.toHaveProperty('passwordHash');
      expect(existsSync(path!)).toBe(false);

      const s = await login(call, email, PASSWORD);
      const me = await call('GET', '/users/me', { token: s.accessToken });
      expect(me.body.permissions).toContain('users:delete');
      expect(me.body.permissions).toContain('admin:stats:read');

      for (const body of [adminBody(token), {}]) {
        const again = await call('POST', '/setup/admin', { body });
        expect([again.status, again.body.code]).toEqual([404, 'not_found']);
      }
      // The next start writes no new token.
      expect(await prepareSetupToken(app.t.deps)).toBeNull();
      expect(existsSync(path!)).toBe(false);
      expect(app.t.logs.text).not.toContain(token);
    });
  });

  describe('with two requests at once', () => {
    const app = useTestApp(backend, { overrides: NO_BOOTSTRAP });

    it('creates exactly one admin', async () => {
      const path = (await prepareSetupToken(app.t.deps))!;
      const token = readFileSync(path, 'utf8').trim();
      const [a, b] = [uniqueEmail('a'), uniqueEmail('b')];
      const results = await Promise.all([a, b].map((email) => app.call('POST', '/setup/admin', { body: adminBody(token, email) })));
      expect(results.map((r) => r.status).sort()).toEqual([201, 404]);
      const winner = results.find((r) => r.status === 201)!.body.user.email;
      const s = await login(app.call, winner, PASSWORD);
      const stats = await app.call('GET', '/admin/stats', { token: s.accessToken });
      expect(stats.body.users.byRole.admin).toBe(1);
      expect((await app.call('POST', '/auth/login', { body: { email: winner === a ? b : a, password: PASSWORD } })).status).toBe(401);
    });
  });

  describe('when the token file is gone', () => {
    const app = useTestApp(backend, { overrides: NO_BOOTSTRAP });

    it('answers 403 while setup is open, and 404 once an admin exists, even to a request already past the route check', async () => {
      const path = (await prepareSetupToken(app.t.deps))!;
      const old = readFileSync(path, 'utf8').trim();
      rmSync(path);
      const refused = await app.call('POST', '/setup/admin', { body: adminBody(old) });
      expect([refused.status, refused.body.code]).toEqual([403, 'forbidden']);

      const token = readFileSync((await prepareSetupToken(app.t.deps))!, 'utf8').trim();
      expect((await app.call('POST', '/setup/admin', { body: adminBody(token) })).status).toBe(201);
      // The loser of two requests at once: it passed the route's check before the winner
      // committed, and reads the file after the winner removed it.
      for (const t of [token, old]) {
        await expect(createFirstAdmin(app.t.services, adminBody(t))).rejects.toMatchObject({ code: 'not_found' });
      }
    });
  });

  it('removes a leftover token file at the next start once an admin comes from BOOTSTRAP_ADMIN_*', async () => {
    const db = await openDatabase(backend);
    const first = await createTestApp({ database: db.database, overrides: NO_BOOTSTRAP });
    const path = (await prepareSetupToken(first.deps))!;
    expect(existsSync(path)).toBe(true);
    await first.stop();
    const dataDir = first.deps.config.dataDir;
    const restarted = await createTestApp({ database: db.database, config: testConfig({ DATA_DIR: dataDir }) });
    expect(await prepareSetupToken(restarted.deps)).toBeNull();
    expect(existsSync(path)).toBe(false);
    const r = await client(restarted)('POST', '/setup/admin', { body: adminBody('anything') });
    expect([r.status, r.body.code]).toEqual([404, 'not_found']);
    await loginAdmin(client(restarted));
    await restarted.stop();
    await db.dispose();
  });

  describe('the bootstrap admin (BOOTSTRAP_ADMIN_*) at the next start', () => {
    const BOOT_PASSWORD = 'Bootstrap-Password-9!';
    const bootstrap = (email: string) => ({ BOOTSTRAP_ADMIN_EMAIL: email, BOOTSTRAP_ADMIN_PASSWORD: BOOT_PASSWORD });
    /** Warnings logged at start that name the setting. */
    const warnings = (app: TestApp) => app.logs.lines.filter((l) => JSON.parse(l).level === 40 && l.includes('BOOTSTRAP_ADMIN_EMAIL'));

    /** Starts one app on a database of its own, hands it to `fn`, then cleans up. */
    async function withDatabase(fn: (database: Database, started: TestApp[]) => Promise<void>) {
      const db = await openDatabase(backend);
      const started: TestApp[] = [];
      try {
        await fn(db.database, started);
      } finally {
        for (const a of started) await a.stop();
        await db.dispose();
      }
    }
    const start = async (database: Database, started: TestApp[], overrides: Record<string, string>) => {
      const a = await createTestApp({ database, overrides });
      started.push(a);
      return a;
    };

    /** The account holding `email` kept its password, roles and unverified mark; the bootstrap password opens nothing; a warning names the setting. */
    async function expectLeftAlone(app: TestApp, email: string, password: string) {
      const call = client(app);
      const s = await login(call, email, password);
      const me = await call('GET', '/users/me', { token: s.accessToken });
      expect(me.body).toMatchObject({ email, roles: ['user'], emailVerified: false });
      expect(me.body.permissions).not.toContain('users:roles:assign');
      const boot = await call('POST', '/auth/login', { body: { email, password: BOOT_PASSWORD } });
      expect([boot.status, boot.body.code]).toEqual([401, 'invalid_credentials']);
      const [warning, ...more] = warnings(app);
      expect(more).toEqual([]);
      // Neither the address nor its owner.
      expect(warning).not.toContain(s.userId);
      expect(app.logs.text).not.toContain(email);
    }

    it('does not promote an account that registered the address before the setting was set', async () => {
      await withDatabase(async (database, started) => {
        const email = uniqueEmail('early');
        const before = await start(database, started, NO_BOOTSTRAP);
        await registerAndLogin(client(before), { email });
        await before.stop();
        const restarted = await start(database, started, bootstrap(email));
        await expectLeftAlone(restarted, email, PASSWORD);
        // No admin came from the setting: first-run setup is still open.
        expect(await prepareSetupToken(restarted.deps)).not.toBeNull();
      });
    });

    it('does not promote an account whose email was changed to the address (PUT /users/me)', async () => {
      await withDatabase(async (database, started) => {
        const email = uniqueEmail('claimed');
        const before = await start(database, started, NO_BOOTSTRAP);
        const s = await registerAndLogin(client(before));
        const moved = await client(before)('PUT', '/users/me', { token: s.accessToken, body: { email, currentPassword: PASSWORD } });
        expect(moved.status).toBe(200);
        await before.stop();
        await expectLeftAlone(await start(database, started, bootstrap(email)), email, PASSWORD);
      });
    });

    it('does not promote whoever registers the address the bootstrap admin moved away from, or left by deletion', async () => {
      await withDatabase(async (database, started) => {
        const email = uniqueEmail('boot');
        const first = await start(database, started, bootstrap(email));
        let call = client(first);
        const boot = await login(call, email, BOOT_PASSWORD);
        const elsewhere = uniqueEmail('moved');
        const moved = await call('PUT', '/users/me', {
          token: boot.accessToken,
          body: { email: elsewhere, currentPassword: BOOT_PASSWORD },
        });
        expect(moved.status).toBe(200);
        const squatter = await registerAndLogin(call, { email });
        await first.stop();

        const second = await start(database, started, bootstrap(email));
        await expectLeftAlone(second, email, PASSWORD);
        call = client(second);
        // The admin who moved is still the one admin.
        const admin = await login(call, elsewhere, BOOT_PASSWORD);
        expect((await call('GET', '/users/me', { token: admin.accessToken })).body.roles).toEqual(['admin']);

        // The address is freed (the squatter deleted), the bootstrap admin deleted, then the address registered again.
        expect((await call('DELETE', `/users/${squatter.userId}`, { token: admin.accessToken })).status).toBe(204);
        const other = await userWithRoles(call, admin, ['admin']);
        expect((await call('DELETE', `/users/${admin.userId}`, { token: other.accessToken })).status).toBe(204);
        await registerAndLogin(call, { email });
        await second.stop();
        await expectLeftAlone(await start(database, started, bootstrap(email)), email, PASSWORD);
      });
    });

    it('creates the admin when no account holds the address; later starts change nothing and log nothing, and do not give admin back', async () => {
      await withDatabase(async (database, started) => {
        const email = uniqueEmail('boot');
        const first = await start(database, started, bootstrap(email));
        let call = client(first);
        const boot = await login(call, email, BOOT_PASSWORD);
        expect((await call('GET', '/users/me', { token: boot.accessToken })).body).toMatchObject({ roles: ['admin'], emailVerified: true });
        expect(warnings(first)).toEqual([]);
        // The admin changes the password; a restart keeps it and logs nothing.
        const NEW = 'Changed-Admin-Password-7!';
        expect(
          (await call('PUT', '/users/me', { token: boot.accessToken, body: { password: NEW, currentPassword: BOOT_PASSWORD } })).status,
        ).toBe(200);
        await first.stop();
        const second = await start(database, started, bootstrap(email));
        call = client(second);
        expect(warnings(second)).toEqual([]);
        expect((await call('POST', '/auth/login', { body: { email, password: BOOT_PASSWORD } })).status).toBe(401);
        const again = await login(call, email, NEW);
        // Another admin takes admin away from the bootstrap admin: a restart does not give it back.
        const other = await userWithRoles(call, again, ['admin']);
        expect((await call('PUT', `/users/${again.userId}/roles`, { token: other.accessToken, body: { roles: ['user'] } })).status).toBe(
          200,
        );
        await second.stop();
        const third = await start(database, started, bootstrap(email));
        call = client(third);
        const demoted = await login(call, email, NEW);
        expect((await call('GET', '/users/me', { token: demoted.accessToken })).body).toMatchObject({ id: again.userId, roles: ['user'] });
        expect(warnings(third)).toHaveLength(1);
        expect(third.logs.text).not.toContain(email);
      });
    });
  });

  describe('in production', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const config = testConfig({
      ...NO_BOOTSTRAP,
      NODE_ENV: 'production',
      JWT_PRIVATE_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      JWT_RSA_PRIVATE_KEY: testRsaKey(),
      MFA_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      SMTP_URL: 'smtp://127.0.0.1:2525',
      PUBLIC_URL: 'https://auth.example.test',
      METRICS_TOKEN: randomBytes(16).toString('hex'),
    });
    const app = useTestApp(backend, { config, app: { mail: { send: false } } });

    it('writes no token (removing a leftover one) and answers 404 as if the route did not exist', async () => {
      const leftover = join(config.dataDir, 'setup-token');
      writeFileSync(leftover, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
      expect(await prepareSetupToken(app.t.deps)).toBeNull();
      expect(existsSync(leftover)).toBe(false);
      for (const body of [adminBody('anything'), {}]) {
        const res = await app.call('POST', '/setup/admin', { body });
        expect([res.status, res.body.code]).toEqual([404, 'not_found']);
      }
    });
  });
});
