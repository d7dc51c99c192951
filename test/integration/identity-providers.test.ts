// Upstream identity providers as configuration (docs/identity-providers.md,
// docs/api.md "Identity providers"): the admin API with its permissions, the
// URL and type rules, the write-only client secret (sealed at rest, never
// answered, logged or audited), deletion and what goes with it, the public
// list of sign-in buttons, and providers declared in IDENTITY_PROVIDERS_FILE;
// on both backends.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { auditLogs, identityProviders, userIdentities } from '../../src/db/schema.js';
import { enabledUpstream } from '../../src/signin/upstream/providers.js';
import { createTestApp, testConfig, type TestApp } from '../helpers/app.js';
import { startServedApp } from '../helpers/browser.js';
import { loginAtPeer, startOidcProvider, UserAgent } from '../helpers/oidc-peers.js';
import { client, loginAdmin, registerAndLogin, userWithRoles, type Call, type Session } from '../helpers/http.js';
import { BACKENDS, openDatabase } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const SECRET = 'upstream-client-secret-9f8e7d6c5b4a';
const OTHER_SECRET = 'another-upstream-secret-0a1b2c3d4e5f';

const OIDC = {
  type: 'oidc',
  name: 'Company SSO',
  issuer: 'https://sso.example.com/realms/staff',
  clientId: 'auth-system',
  clientSecret: SECRET,
} as const;

const GITHUB = { type: 'github', name: 'GitHub', clientId: 'Iv1.0123456789abcdef', clientSecret: SECRET } as const;

const IDP_KEYS = [
  'clientId',
  'createdAt',
  'enabled',
  'githubApiUrl',
  'githubUrl',
  'hasClientSecret',
  'id',
  'issuer',
  'name',
  'scopes',
  'source',
  'trustEmailVerified',
  'type',
  'updatedAt',
];

let seq = 0;
const newId = (tag = 'idp') => `${tag}-${Date.now().toString(36)}-${seq++}`;

/** The whole writable representation of a provider as read, for PUT. */
const writable = (p: Record<string, unknown>) => {
  const { id: _i, createdAt: _c, updatedAt: _u, hasClientSecret: _h, source: _s, ...rest } = p;
  if (rest.type === 'oidc') {
    delete rest.githubUrl;
    delete rest.githubApiUrl;
  } else delete rest.issuer;
  return rest;
};

describe.each(BACKENDS)('identity providers admin API on %s', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;
  let admin: Session;
  let user: Session;
  let reader: Session;

  beforeAll(async () => {
    admin = await loginAdmin(call);
    user = await registerAndLogin(call);
    const role = await call('POST', '/roles', { token: admin.accessToken, body: { name: 'idp_reader', permissions: ['idps:read'] } });
    expect(role.status).toBe(201);
    reader = await userWithRoles(call, admin, ['user', 'idp_reader']);
  });

  const create = (body: unknown, token = admin.accessToken) => call('POST', '/admin/identity-providers', { token, body });

  it('gives the idps permissions to admin only', async () => {
    const roles = await call('GET', '/roles', { token: admin.accessToken });
    const holders = (perm: string) =>
      roles.body.items.filter((r: { permissions: string[] }) => r.permissions.includes(perm)).map((r: { name: string }) => r.name);
    expect(holders('idps:manage')).toEqual(['admin']);
    expect(holders('idps:read')).toEqual(expect.arrayContaining(['admin', 'idp_reader']));
  });

  it('refuses a user without idps permissions (403) and an anonymous caller (401)', async () => {
    const id = newId();
    expect((await create({ id, ...OIDC })).status).toBe(201);
    expect((await call('GET', '/admin/identity-providers', { token: user.accessToken })).status).toBe(403);
    expect((await call('GET', `/admin/identity-providers/${id}`, { token: user.accessToken })).status).toBe(403);
    expect((await call('GET', '/admin/identity-providers')).status).toBe(401);
    expect((await create({ id: newId(), ...OIDC }, user.accessToken)).status).toBe(403);
    expect((await call('DELETE', `/admin/identity-providers/${id}`, { token: user.accessToken })).status).toBe(403);
  });

  it('lets a holder of idps:read read, but not add, change or remove', async () => {
    const id = newId();
    const made = await create({ id, ...OIDC });
    expect((await call('GET', '/admin/identity-providers', { token: reader.accessToken })).status).toBe(200);
    expect((await call('GET', `/admin/identity-providers/${id}`, { token: reader.accessToken })).status).toBe(200);
    expect((await create({ id: newId(), ...OIDC }, reader.accessToken)).status).toBe(403);
    const put = await call('PUT', `/admin/identity-providers/${id}`, { token: reader.accessToken, body: writable(made.body) });
    expect(put.status).toBe(403);
    expect((await call('DELETE', `/admin/identity-providers/${id}`, { token: reader.accessToken })).status).toBe(403);
  });

  it('adds an oidc provider with the defaults, and never answers its secret', async () => {
    const id = newId();
    const res = await create({ id, ...OIDC });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(IDP_KEYS);
    expect(res.body).toMatchObject({
      id,
      type: 'oidc',
      name: 'Company SSO',
      issuer: OIDC.issuer,
      githubUrl: null,
      githubApiUrl: null,
      clientId: 'auth-system',
      scopes: ['openid', 'email', 'profile'],
      trustEmailVerified: false,
      enabled: true,
      hasClientSecret: true,
      source: 'api',
    });
    expect(res.text).not.toContain(SECRET);
    const read = await call('GET', `/admin/identity-providers/${id}`, { token: admin.accessToken });
    expect(read.body).toEqual(res.body);
    const list = await call('GET', '/admin/identity-providers', { token: admin.accessToken });
    expect(list.body.items.map((p: { id: string }) => p.id)).toContain(id);
    expect(list.text).not.toContain(SECRET);
    expect(app.t.logs.text).not.toContain(SECRET);
  });

  it('stores the secret sealed, bound to the provider, and opens it for the sign-in', async () => {
    const id = newId();
    expect((await create({ id, ...OIDC })).status).toBe(201);
    const [row] = await app.database.db.select().from(identityProviders).where(eq(identityProviders.id, id));
    expect(row!.clientSecretSealed).toBeTruthy();
    expect(row!.clientSecretSealed).not.toContain(SECRET);
    expect(JSON.stringify(row)).not.toContain(SECRET);
    expect((await enabledUpstream(app.t.services, id))?.clientSecret).toBe(SECRET);
    // Copied onto another provider's row, it does not open there.
    const other = newId();
    expect((await create({ id: other, ...OIDC, clientSecret: OTHER_SECRET })).status).toBe(201);
    await app.database.db
      .update(identityProviders)
      .set({ clientSecretSealed: row!.clientSecretSealed })
      .where(eq(identityProviders.id, other));
    await expect(enabledUpstream(app.t.services, other)).rejects.toThrow();
  });

  it('adds a github provider with GitHub’s URLs and scopes, or an Enterprise Server’s', async () => {
    const res = await create({ id: newId('gh'), ...GITHUB });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      type: 'github',
      issuer: null,
      githubUrl: 'https://github.com',
      githubApiUrl: 'https://api.github.com',
      scopes: ['read:user', 'user:email'],
    });
    const ghes = await create({
      id: newId('ghe'),
      ...GITHUB,
      githubUrl: 'https://github.example.com',
      githubApiUrl: 'https://github.example.com/api/v3',
      scopes: ['read:user'],
    });
    expect(ghes.status).toBe(201);
    expect(ghes.body).toMatchObject({ githubUrl: 'https://github.example.com', githubApiUrl: 'https://github.example.com/api/v3' });
  });

  it('refuses what is not valid with validation_failed naming the field', async () => {
    const refused = async (body: Record<string, unknown>, path: string) => {
      const res = await create(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
      expect(res.text).not.toContain(SECRET);
    };
    for (const id of ['A-upper', '-leading', 'x', 'has_underscore', 'a'.repeat(64), 'with space']) await refused({ ...OIDC, id }, 'id');
    const { issuer: _, ...noIssuer } = OIDC;
    await refused({ id: newId(), ...noIssuer }, 'issuer');
    await refused({ id: newId(), ...OIDC, issuer: 'ftp://sso.example.com' }, 'issuer');
    await refused({ id: newId(), ...OIDC, issuer: 'sso.example.com' }, 'issuer');
    await refused({ id: newId(), ...OIDC, issuer: 'https://sso.example.com/#x' }, 'issuer');
    await refused({ id: newId(), ...OIDC, issuer: 'https://sso.example.com/?tenant=1' }, 'issuer');
    await refused({ id: newId(), ...OIDC, issuer: 'https://user:pw@sso.example.com/' }, 'issuer');
    await refused({ id: newId(), ...OIDC, githubUrl: 'https://github.com' }, 'githubUrl');
    await refused({ id: newId(), ...OIDC, scopes: ['email'] }, 'scopes');
    await refused({ id: newId(), ...OIDC, scopes: ['openid', 'openid'] }, 'scopes');
    await refused({ id: newId(), ...OIDC, scopes: ['openid', 'two words'] }, 'scopes.1');
    await refused({ id: newId(), ...OIDC, type: 'saml' }, 'type');
    await refused({ id: newId(), ...OIDC, extra: true }, 'extra');
    await refused({ id: newId(), ...GITHUB, issuer: OIDC.issuer }, 'issuer');
    await refused({ id: newId(), ...GITHUB, githubApiUrl: 'https://api.github.com/?x=1' }, 'githubApiUrl');
    const { clientSecret: __, ...noSecret } = GITHUB;
    await refused({ id: newId(), ...noSecret }, 'clientSecret');
    // An oidc provider without a secret is a public client at the upstream.
    const { clientSecret: ___, ...publicOidc } = OIDC;
    const res = await create({ id: newId(), ...publicOidc });
    expect(res.status).toBe(201);
    expect(res.body.hasClientSecret).toBe(false);
  });

  it('accepts an http issuer outside production (a local provider in development)', async () => {
    const res = await create({ id: newId(), ...OIDC, issuer: 'http://127.0.0.1:8080/realms/dev' });
    expect(res.status).toBe(201);
  });

  it('refuses a taken id as clients do: 400 validation_failed on id', async () => {
    const id = newId();
    expect((await create({ id, ...OIDC })).status).toBe(201);
    const again = await create({ id, ...GITHUB });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe('validation_failed');
    expect(again.body.errors).toEqual([{ path: 'id', message: expect.any(String) }]);
  });

  it('replaces a provider with PUT, keeping the secret when none is sent', async () => {
    const id = newId();
    const made = (await create({ id, ...OIDC })).body;
    const body = { ...writable(made), name: 'Staff SSO', trustEmailVerified: true, enabled: false, scopes: ['openid', 'email'] };
    const res = await call('PUT', `/admin/identity-providers/${id}`, { token: admin.accessToken, body });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'Staff SSO', trustEmailVerified: true, enabled: false, scopes: ['openid', 'email'] });
    expect(res.body.hasClientSecret).toBe(true);
    expect(res.body.createdAt).toBe(made.createdAt);
    const [row] = await app.database.db.select().from(identityProviders).where(eq(identityProviders.id, id));
    expect(app.t.services.secrets.open(row!.clientSecretSealed!, `idp:${id}`)).toBe(SECRET);

    const replaced = await call('PUT', `/admin/identity-providers/${id}`, {
      token: admin.accessToken,
      body: { ...body, enabled: true, clientSecret: OTHER_SECRET },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.text).not.toContain(OTHER_SECRET);
    expect((await enabledUpstream(app.t.services, id))?.clientSecret).toBe(OTHER_SECRET);

    const cleared = await call('PUT', `/admin/identity-providers/${id}`, {
      token: admin.accessToken,
      body: { ...body, clientSecret: null },
    });
    expect(cleared.body.hasClientSecret).toBe(false);
  });

  it('refuses a PUT that is not the whole representation, changes the type, or names an unknown provider', async () => {
    const id = newId();
    const made = (await create({ id, ...OIDC })).body;
    const partial = await call('PUT', `/admin/identity-providers/${id}`, { token: admin.accessToken, body: { name: 'Only a name' } });
    expect(partial.status).toBe(400);
    expect(partial.body.code).toBe('validation_failed');
    const retyped = await call('PUT', `/admin/identity-providers/${id}`, {
      token: admin.accessToken,
      body: { ...GITHUB, scopes: ['read:user'], trustEmailVerified: false, enabled: true },
    });
    expect(retyped.status).toBe(400);
    expect(retyped.body.errors.map((e: { path: string }) => e.path)).toEqual(['type']);
    const unknown = await call('PUT', '/admin/identity-providers/no-such-provider', { token: admin.accessToken, body: writable(made) });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('idp_not_found');
  });

  it('deletes a provider (204, then 404) and the identities linked through it', async () => {
    const id = newId();
    expect((await create({ id, ...OIDC })).status).toBe(201);
    const someone = await registerAndLogin(call);
    await app.database.db.insert(userIdentities).values({ userId: someone.userId, providerId: id, subject: 'sub-123' });
    const del = await call('DELETE', `/admin/identity-providers/${id}`, { token: admin.accessToken });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    const gone = await call('GET', `/admin/identity-providers/${id}`, { token: admin.accessToken });
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('idp_not_found');
    expect((await call('DELETE', `/admin/identity-providers/${id}`, { token: admin.accessToken })).body.code).toBe('idp_not_found');
    expect(await app.database.db.select().from(userIdentities).where(eq(userIdentities.userId, someone.userId))).toEqual([]);
    // The account itself stays.
    expect((await call('GET', '/users/me', { token: someone.accessToken })).status).toBe(200);
  });

  it('audits adding, changing and removing a provider, never with the secret', async () => {
    const id = newId('audited');
    const made = (await create({ id, ...OIDC })).body;
    await call('PUT', `/admin/identity-providers/${id}`, {
      token: admin.accessToken,
      body: { ...writable(made), clientSecret: OTHER_SECRET },
    });
    await call('DELETE', `/admin/identity-providers/${id}`, { token: admin.accessToken });
    await app.t.services.audit.flush();
    const rows = await app.database.db.select().from(auditLogs).where(eq(auditLogs.actorId, admin.userId));
    const mine = rows.filter((r) => r.detail?.endsWith(id));
    expect(mine.map((r) => [r.action, r.detail]).sort()).toEqual(
      [
        ['idps.create', `idp_created: ${id}`],
        ['idps.delete', `idp_deleted: ${id}`],
        ['idps.update', `idp_updated: ${id}`],
      ].sort(),
    );
    const all = JSON.stringify(await app.database.db.select().from(auditLogs));
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(OTHER_SECRET);
    expect(app.t.logs.text).not.toContain(OTHER_SECRET);
  });

  it('lists the enabled providers’ buttons to anyone at /auth/identity-providers', async () => {
    const on = newId('on');
    const off = newId('off');
    expect((await create({ id: on, ...OIDC, name: 'Shown' })).status).toBe(201);
    expect((await create({ id: off, ...GITHUB, enabled: false })).status).toBe(201);
    const res = await call('GET', '/auth/identity-providers');
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit-limit')).toBeTruthy();
    const items = res.body.items as { id: string }[];
    expect(items.find((p) => p.id === on)).toEqual({ id: on, name: 'Shown', type: 'oidc' });
    expect(items.find((p) => p.id === off)).toBeUndefined();
    for (const p of items) expect(Object.keys(p).sort()).toEqual(['id', 'name', 'type']);
    expect(res.text).not.toContain(SECRET);
    expect((await call('GET', '/auth/identity-providers', { token: user.accessToken })).status).toBe(200);
  });
});

describe('identity providers in production', () => {
  it('refuses an http issuer or GitHub URL', async () => {
    const db = await openDatabase('pglite');
    let t: TestApp | undefined;
    try {
      t = await createTestApp({ database: db.database, config: { ...testConfig(), production: true } });
      const call: Call = client(t);
      const admin = await loginAdmin(call);
      const post = (body: unknown) => call('POST', '/admin/identity-providers', { token: admin.accessToken, body });
      const http = await post({ id: 'dev-sso', ...OIDC, issuer: 'http://sso.example.com' });
      expect(http.status).toBe(400);
      expect(http.body.errors).toEqual([{ path: 'issuer', message: expect.stringMatching(/https/) }]);
      const gh = await post({ id: 'dev-ghe', ...GITHUB, githubUrl: 'http://github.example.com' });
      expect(gh.body.errors.map((e: { path: string }) => e.path)).toEqual(['githubUrl']);
      expect((await post({ id: 'prod-sso', ...OIDC })).status).toBe(201);
    } finally {
      await t?.stop();
      await db.dispose();
    }
  });
});

describe.each(BACKENDS)('IDENTITY_PROVIDERS_FILE on %s', (backend) => {
  const dir = mkdtempSync(join(tmpdir(), 'idps-file-'));
  const file = join(dir, 'identity-providers.json');
  const declared = (name: string) => [
    { id: 'declared-sso', type: 'oidc', name, issuer: OIDC.issuer, clientId: 'auth-system', clientSecretEnv: 'SSO_SECRET' },
    { id: 'declared-gh', type: 'github', name: 'GitHub', clientId: 'Iv1.abc', clientSecretEnv: 'GH_SECRET', enabled: false },
  ];

  const start = (db: Awaited<ReturnType<typeof openDatabase>>, env: Record<string, string>): Promise<TestApp> =>
    createTestApp({ database: db.database, config: testConfig({ IDENTITY_PROVIDERS_FILE: file, ...env }) });

  it('creates the declared providers at start, and updates them at the next start', async () => {
    const db = await openDatabase(backend);
    try {
      writeFileSync(file, JSON.stringify(declared('Declared SSO')));
      const first = await start(db, { SSO_SECRET: SECRET, GH_SECRET: OTHER_SECRET });
      const call: Call = client(first);
      const admin = await loginAdmin(call);
      const sso = await call('GET', '/admin/identity-providers/declared-sso', { token: admin.accessToken });
      expect(sso.status).toBe(200);
      expect(sso.body).toMatchObject({
        name: 'Declared SSO',
        source: 'file',
        scopes: ['openid', 'email', 'profile'],
        hasClientSecret: true,
      });
      const gh = await call('GET', '/admin/identity-providers/declared-gh', { token: admin.accessToken });
      expect(gh.body).toMatchObject({ type: 'github', enabled: false, githubUrl: 'https://github.com', source: 'file' });
      expect((await enabledUpstream(first.services, 'declared-sso'))?.clientSecret).toBe(SECRET);
      const [row] = await db.database.db.select().from(identityProviders).where(eq(identityProviders.id, 'declared-sso'));
      expect(row!.clientSecretSealed).not.toContain(SECRET);
      expect(first.logs.text).not.toContain(SECRET);
      await first.stop();

      writeFileSync(file, JSON.stringify(declared('Renamed SSO')));
      const second = await start(db, { SSO_SECRET: OTHER_SECRET, GH_SECRET: OTHER_SECRET });
      const again = await client(second)('GET', '/admin/identity-providers/declared-sso', {
        token: (await loginAdmin(client(second))).accessToken,
      });
      expect(again.body).toMatchObject({ name: 'Renamed SSO', createdAt: sso.body.createdAt, source: 'file' });
      expect((await enabledUpstream(second.services, 'declared-sso'))?.clientSecret).toBe(OTHER_SECRET);
      await second.stop();
    } finally {
      await db.dispose();
    }
  });

  it('stops the start with a message naming every problem of the file', async () => {
    const db = await openDatabase(backend);
    try {
      writeFileSync(file, '[{"id": "x"');
      await expect(start(db, {})).rejects.toThrow(/IDENTITY_PROVIDERS_FILE .*not valid JSON/);
      writeFileSync(
        file,
        JSON.stringify([
          { id: 'no-issuer', type: 'oidc', name: 'A', clientId: 'a' },
          { id: 'Bad_Slug', type: 'oidc', name: 'B', issuer: OIDC.issuer, clientId: 'b' },
          { id: 'inline', type: 'oidc', name: 'C', issuer: OIDC.issuer, clientId: 'c', clientSecret: SECRET },
        ]),
      );
      const shape = await start(db, {}).catch((e: unknown) => e);
      expect(shape).toBeInstanceOf(ConfigError);
      const shapeProblems = (shape as ConfigError).problems.join('\n');
      expect(shapeProblems).toContain('0.issuer');
      expect(shapeProblems).toContain('1.id');
      expect(shapeProblems).toContain('2.clientSecret');
      expect(shapeProblems).not.toContain(SECRET);

      writeFileSync(
        file,
        JSON.stringify([
          { id: 'unset-env', type: 'oidc', name: 'A', issuer: OIDC.issuer, clientId: 'a', clientSecretEnv: 'UNSET_IDP_SECRET' },
          { id: 'gh-no-env', type: 'github', name: 'B', clientId: 'b' },
          { id: 'bad-scope', type: 'oidc', name: 'C', issuer: 'ftp://sso.example.com', clientId: 'c', scopes: ['email'] },
        ]),
      );
      const err = await start(db, {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toContain('unset-env');
      expect(problems).toContain('UNSET_IDP_SECRET is not set');
      expect(problems).toMatch(/gh-no-env.*clientSecretEnv/);
      expect(problems).toMatch(/bad-scope.*issuer/);
      expect(problems).toMatch(/bad-scope.*scopes/);
      // Nothing of a refused file was applied.
      expect(await db.database.db.select().from(identityProviders)).toEqual([]);
    } finally {
      await db.dispose();
    }
  });

  it('refuses a file that does not exist when the configuration is read', () => {
    expect(() => testConfig({ IDENTITY_PROVIDERS_FILE: join(dir, 'missing.json') })).toThrow(/IDENTITY_PROVIDERS_FILE: file not found/);
  });
});

describe.each(BACKENDS)('identity provider secrets after a key rotation on %s', (backend) => {
  it('seals every provider secret again under the new key at start, so the old key can go', async () => {
    const OLD = randomBytes(32).toString('hex');
    const NEW = randomBytes(32).toString('hex');
    const db = await openDatabase(backend);
    const started: TestApp[] = [];
    const instance = async (keys: Record<string, string>) => {
      const t = await createTestApp({ database: db.database, overrides: keys });
      started.push(t);
      await t.services.background.idle();
      return t;
    };
    try {
      const a = await instance({ MFA_ENCRYPTION_KEY: OLD });
      const call = client(a);
      const admin = await loginAdmin(call);
      const id = newId('rotated');
      expect((await call('POST', '/admin/identity-providers', { token: admin.accessToken, body: { id, ...OIDC } })).status).toBe(201);
      const sealed = async () =>
        (await db.database.db.select().from(identityProviders).where(eq(identityProviders.id, id)))[0]!.clientSecretSealed!;
      const before = await sealed();

      const rotated = await instance({ MFA_ENCRYPTION_KEY: NEW, MFA_PREVIOUS_ENCRYPTION_KEYS: OLD });
      expect(rotated.logs.text).toMatch(/"resealed":1,"unreadable":0[^\n]*identity provider secrets/);
      expect(await sealed()).not.toBe(before);
      expect(rotated.logs.text).not.toContain(SECRET);

      const later = await instance({ MFA_ENCRYPTION_KEY: NEW });
      expect((await enabledUpstream(later.services, id))?.clientSecret).toBe(SECRET);
    } finally {
      for (const t of started) await t.stop();
      await db.dispose();
    }
  });
});

describe('a provider added through the API, used for a sign-in', () => {
  it('signs a user in at an OpenID peer, stops when disabled, and takes its identities along when deleted', async () => {
    const served = await startServedApp();
    const callback = `${served.origin}/auth/external/peer/callback`;
    const peer = await startOidcProvider({
      clients: [{ client_id: 'auth-system', client_secret: SECRET, redirect_uris: [callback] }],
      accounts: { alice: { email: 'alice-upstream@example.test', email_verified: true, name: 'Alice' } },
    });
    try {
      const { call } = served;
      const admin = await loginAdmin(call);
      const body = {
        type: 'oidc',
        name: 'Peer',
        issuer: peer.issuer,
        clientId: 'auth-system',
        clientSecret: SECRET,
        trustEmailVerified: true,
      };
      expect((await call('POST', '/admin/identity-providers', { token: admin.accessToken, body: { id: 'peer', ...body } })).status).toBe(
        201,
      );
      expect((await call('GET', '/auth/identity-providers')).body.items).toContainEqual({ id: 'peer', name: 'Peer', type: 'oidc' });

      const ua = new UserAgent(served.clock.now);
      const back = await loginAtPeer(ua, `${served.origin}/auth/external/peer`, 'alice', callback);
      const end = await ua.get(back);
      expect(end.status, end.text.slice(0, 300)).toBeLessThan(400);
      const [identity] = await served.t.deps.database.db.select().from(userIdentities).where(eq(userIdentities.providerId, 'peer'));
      expect(identity).toMatchObject({ subject: 'alice', email: 'alice-upstream@example.test' });

      // Disabled: no button, and a sign-in does not go to the provider.
      const { clientSecret: _, ...kept } = body;
      const off = await call('PUT', '/admin/identity-providers/peer', {
        token: admin.accessToken,
        body: { ...kept, scopes: ['openid', 'email', 'profile'], enabled: false },
      });
      expect(off.status).toBe(200);
      expect(off.body.hasClientSecret).toBe(true);
      expect((await call('GET', '/auth/identity-providers')).body.items.map((p: { id: string }) => p.id)).not.toContain('peer');
      const refused = await new UserAgent().get(`${served.origin}/auth/external/peer`, { stopAt: (u) => u.origin === peer.issuer });
      expect(new URL(refused.url).origin).toBe(served.origin);

      expect((await call('DELETE', '/admin/identity-providers/peer', { token: admin.accessToken })).status).toBe(204);
      expect(await served.t.deps.database.db.select().from(userIdentities).where(eq(userIdentities.providerId, 'peer'))).toEqual([]);
    } finally {
      await peer.stop();
      await served.stop();
    }
  });
});
