// OAuth clients (docs/api.md "OAuth clients"): the admin API with its
// permissions, secrets shown once and rotated, the redirect URI rules,
// deletion and what goes with it, the sign-in statistics, and clients declared
// in OAUTH_CLIENTS_FILE; on both backends.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { oauthGrants } from '../../src/db/schema.js';
import { authenticateClient, countClientSignIn } from '../../src/provider/clients.js';
import { providerTokenRevoked, signProviderAccessToken, verifyProviderAccessToken } from '../../src/provider/jwt.js';
import { createTestApp, testConfig, type TestApp } from '../helpers/app.js';
import { client, loginAdmin, registerAndLogin, userWithRoles, type Call, type Session } from '../helpers/http.js';
import { BACKENDS, openDatabase } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';

const WEB = {
  name: 'Web app',
  type: 'confidential',
  redirectUris: ['https://app.example.com/callback'],
  postLogoutRedirectUris: ['https://app.example.com/'],
  grantTypes: ['authorization_code', 'refresh_token'],
  scopes: ['openid', 'profile', 'email'],
  firstParty: false,
  allowedOrigins: ['https://app.example.com'],
  idTokenSignedResponseAlg: 'RS256',
  backchannelLogoutUri: 'https://app.example.com/backchannel',
  audiences: [],
  roles: [],
} as const;

const CLIENT_KEYS = [
  'allowedOrigins',
  'audiences',
  'backchannelLogoutUri',
  'createdAt',
  'firstParty',
  'grantTypes',
  'id',
  'idTokenSignedResponseAlg',
  'name',
  'postLogoutRedirectUris',
  'redirectUris',
  'roles',
  'scopes',
  'source',
  'type',
  'updatedAt',
];

let seq = 0;
const newId = (tag = 'app') => `${tag}-${Date.now().toString(36)}-${seq++}`;

/** Does the client authenticate with this secret at the token-side endpoints? */
async function secretWorks(t: TestApp, clientId: string, clientSecret: string): Promise<boolean> {
  try {
    await authenticateClient(t.services, { method: 'client_secret_basic', clientId, clientSecret });
    return true;
  } catch {
    return false;
  }
}

describe.each(BACKENDS)('OAuth clients admin API on %s', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;
  let admin: Session;
  let user: Session;
  let reader: Session;

  beforeAll(async () => {
    admin = await loginAdmin(call);
    user = await registerAndLogin(call);
    const role = await call('POST', '/roles', {
      token: admin.accessToken,
      body: { name: 'client_reader', permissions: ['clients:read'] },
    });
    expect(role.status).toBe(201);
    reader = await userWithRoles(call, admin, ['user', 'client_reader']);
  });

  const create = (body: unknown, token = admin.accessToken) => call('POST', '/admin/clients', { token, body });

  it('lists the client permissions in the catalogue, held by admin only', async () => {
    const res = await call('GET', '/permissions', { token: admin.accessToken });
    const names = res.body.items.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['clients:read', 'clients:manage']));
    const roles = await call('GET', '/roles', { token: admin.accessToken });
    const holders = roles.body.items
      .filter((r: { permissions: string[] }) => r.permissions.includes('clients:manage'))
      .map((r: { name: string }) => r.name);
    expect(holders).toEqual(['admin']);
  });

  it('refuses a user without clients:read (403) and an anonymous caller (401)', async () => {
    expect((await call('GET', '/admin/clients', { token: user.accessToken })).status).toBe(403);
    expect((await call('GET', '/admin/clients')).status).toBe(401);
    expect((await create({ name: 'x' }, user.accessToken)).status).toBe(403);
  });

  it('lets a holder of clients:read read, but not register, change or delete', async () => {
    const id = newId();
    expect((await create({ id, ...WEB })).status).toBe(201);
    expect((await call('GET', '/admin/clients', { token: reader.accessToken })).status).toBe(200);
    expect((await call('GET', `/admin/clients/${id}`, { token: reader.accessToken })).status).toBe(200);
    expect((await call('GET', `/admin/clients/${id}/stats`, { token: reader.accessToken })).status).toBe(200);
    expect((await create({ name: 'x' }, reader.accessToken)).status).toBe(403);
    expect((await call('PUT', `/admin/clients/${id}`, { token: reader.accessToken, body: WEB })).status).toBe(403);
    expect((await call('POST', `/admin/clients/${id}/secret`, { token: reader.accessToken })).status).toBe(403);
    expect((await call('DELETE', `/admin/clients/${id}`, { token: reader.accessToken })).status).toBe(403);
  });

  it('registers a confidential client and shows its secret once, never in a read', async () => {
    const id = newId();
    const res = await create({ id, ...WEB });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toContain('no-store');
    expect(Object.keys(res.body).sort()).toEqual([...CLIENT_KEYS, 'clientSecret'].sort());
    expect(res.body).toMatchObject({ ...WEB, id, source: 'api' });
    expect(res.body.clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await secretWorks(app.t, id, res.body.clientSecret)).toBe(true);
    expect(await secretWorks(app.t, id, 'not-the-secret')).toBe(false);

    const read = await call('GET', `/admin/clients/${id}`, { token: admin.accessToken });
    expect(read.status).toBe(200);
    expect(Object.keys(read.body).sort()).toEqual(CLIENT_KEYS);
    const list = await call('GET', '/admin/clients?limit=100', { token: admin.accessToken });
    expect(list.status).toBe(200);
    expect(list.body.items.find((c: { id: string }) => c.id === id)).toEqual(read.body);
    expect(list.text).not.toContain(res.body.clientSecret);
  });

  it('gives defaults, a generated id, and no secret to a public client', async () => {
    const res = await create({ name: 'Native app', type: 'public', redirectUris: ['com.example.app:/callback'] });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[A-Za-z0-9._-]{3,64}$/);
    expect(res.body.clientSecret).toBeUndefined();
    expect(res.body).toMatchObject({
      grantTypes: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'profile', 'email', 'offline_access'],
      idTokenSignedResponseAlg: 'RS256',
      backchannelLogoutUri: null,
      firstParty: false,
    });
    // A public client authenticates by its id alone, never with a secret.
    await expect(authenticateClient(app.t.services, { method: 'none', clientId: res.body.id })).resolves.toMatchObject({
      id: res.body.id,
    });
    const rotate = await call('POST', `/admin/clients/${res.body.id}/secret`, { token: admin.accessToken });
    expect(rotate.status).toBe(400);
  });

  it('refuses a taken id, a public client with client_credentials, and fields out of the lists', async () => {
    const id = newId();
    expect((await create({ id, ...WEB })).status).toBe(201);
    const taken = await create({ id, ...WEB });
    expect(taken.status).toBe(400);
    expect(taken.body.code).toBe('validation_failed');
    expect(taken.body.errors).toEqual([{ path: 'id', message: expect.any(String) }]);

    const bad: [string, object][] = [
      ['public with client_credentials', { type: 'public', grantTypes: ['client_credentials'] }],
      ['an unknown grant type', { grantTypes: ['password'] }],
      ['an unknown scope', { scopes: ['openid', 'admin'] }],
      ['an unknown signing algorithm', { idTokenSignedResponseAlg: 'HS256' }],
      ['an id with a space', { id: 'my app' }],
      ['a two-character id', { id: 'ab' }],
      ['an unknown field', { clientSecret: 'mine' }],
      ['an origin with a path', { allowedOrigins: ['https://app.example.com/'] }],
      ['no redirect URI for the code grant', { redirectUris: [] }],
    ];
    for (const [what, change] of bad) {
      const res = await create({ id: newId(), ...WEB, ...change });
      expect({ what, status: res.status, code: res.body.code }).toEqual({ what, status: 400, code: 'validation_failed' });
    }
    const unknownRole = await create({ ...WEB, grantTypes: ['client_credentials'], redirectUris: [], roles: ['no_such_role'] });
    expect(unknownRole.status).toBe(400);
    expect(unknownRole.body.code).toBe('unknown_role');
  });

  it('validates redirect URIs: absolute, no fragment, no wildcard, https or loopback http or a private-use scheme', async () => {
    const table: [string, boolean][] = [
      ['https://app.example.com/cb', true],
      ['https://app.example.com:8443/cb?x=1', true],
      ['http://127.0.0.1/cb', true],
      ['http://127.0.0.1:49152/cb', true],
      ['http://[::1]/cb', true],
      ['http://localhost:3000/cb', true],
      ['com.example.app:/oauth2redirect', true],
      ['com.example.app:/cb', true],
      ['http://app.example.com/cb', false],
      ['https://app.example.com/cb#frag', false],
      ['https://*.example.com/cb', false],
      ['https://app.example.com/*', false],
      ['/relative/cb', false],
      ['app.example.com/cb', false],
      ['javascript:alert(1)', false],
      ['data:text/html,hi', false],
      ['file:///etc/passwd', false],
      ['ftp://example.com/cb', false],
      ['https://app.example.com/c b', false],
    ];
    const outcomes = [];
    for (const [uri] of table) {
      const res = await create({ id: newId(), ...WEB, redirectUris: [uri] });
      outcomes.push([uri, res.status === 201, res.status === 201 ? null : res.body.code]);
    }
    expect(outcomes).toEqual(table.map(([uri, ok]) => [uri, ok, ok ? null : 'invalid_redirect_uri']));
    const logout = await create({ id: newId(), ...WEB, postLogoutRedirectUris: ['http://evil.example/'] });
    expect(logout.body.code).toBe('invalid_redirect_uri');
    const backchannel = await create({ id: newId(), ...WEB, backchannelLogoutUri: 'com.example.app:/logout' });
    expect(backchannel.body.code).toBe('invalid_redirect_uri');
    expect(backchannel.body.errors).toEqual([{ path: 'backchannelLogoutUri', message: expect.any(String) }]);
  });

  it('replaces the whole writable representation with PUT, never the secret', async () => {
    const id = newId();
    const created = await create({ id, ...WEB });
    const changed = { ...WEB, name: 'Renamed', scopes: ['openid'], firstParty: true, idTokenSignedResponseAlg: 'EdDSA' };
    const res = await call('PUT', `/admin/clients/${id}`, { token: admin.accessToken, body: changed });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ...changed, id, createdAt: created.body.createdAt });
    expect(res.body.clientSecret).toBeUndefined();
    expect(await secretWorks(app.t, id, created.body.clientSecret)).toBe(true);
    // Part of it, an id in the body, or a secret: 400.
    const { name: _, ...partial } = WEB;
    for (const body of [partial, { ...WEB, id }, { ...WEB, clientSecret: 'x'.repeat(43) }]) {
      expect((await call('PUT', `/admin/clients/${id}`, { token: admin.accessToken, body })).status).toBe(400);
    }
    expect((await call('PUT', '/admin/clients/no-such-client', { token: admin.accessToken, body: WEB })).body.code).toBe(
      'client_not_found',
    );
    // Becoming public drops the secret.
    const pub = await call('PUT', `/admin/clients/${id}`, { token: admin.accessToken, body: { ...WEB, type: 'public' } });
    expect(pub.status).toBe(200);
    expect(await secretWorks(app.t, id, created.body.clientSecret)).toBe(false);
  });

  it('rotates the secret: the new one works, the old one stops at once (overlap 0)', async () => {
    const id = newId();
    const created = await create({ id, ...WEB });
    const res = await call('POST', `/admin/clients/${id}/secret`, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    expect(Object.keys(res.body)).toEqual(['clientSecret']);
    expect(res.body.clientSecret).not.toBe(created.body.clientSecret);
    expect(await secretWorks(app.t, id, res.body.clientSecret)).toBe(true);
    expect(await secretWorks(app.t, id, created.body.clientSecret)).toBe(false);
    expect((await call('POST', '/admin/clients/no-such-client/secret', { token: admin.accessToken })).status).toBe(404);
  });

  it('keeps a client-credentials client within its creator’s permissions', async () => {
    // A delegate holding clients:manage but not users:read cannot mint a moderator machine.
    const role = await call('POST', '/roles', {
      token: admin.accessToken,
      body: { name: 'client_admin', permissions: ['clients:read', 'clients:manage'] },
    });
    expect(role.status).toBe(201);
    const delegate = await userWithRoles(call, admin, ['user', 'client_admin']);
    const service = { ...WEB, grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [] };
    const refused = await create({ ...service, roles: ['moderator'] }, delegate.accessToken);
    expect(refused.status).toBe(403);
    const asAdmin = await create({ ...service, roles: ['admin'] }, delegate.accessToken);
    expect(asAdmin.status).toBe(403);
    const allowed = await create({ ...service, roles: ['user'] }, delegate.accessToken);
    expect(allowed.status).toBe(201);
    expect(allowed.body.roles).toEqual(['user']);

    // Nor does the delegate change, re-key or delete a machine more powerful than itself.
    const id = newId('machine');
    expect((await create({ id, ...service, roles: ['moderator'] })).status).toBe(201);
    const as = { token: delegate.accessToken };
    expect((await call('PUT', `/admin/clients/${id}`, { ...as, body: { ...service, roles: ['moderator'], name: 'x' } })).status).toBe(403);
    expect((await call('POST', `/admin/clients/${id}/secret`, as)).status).toBe(403);
    expect((await call('DELETE', `/admin/clients/${id}`, as)).status).toBe(403);
    expect((await call('GET', `/admin/clients/${id}`, { token: admin.accessToken })).body.name).toBe(service.name);
    // Its own kind of client, it may.
    expect((await call('POST', `/admin/clients/${allowed.body.id}/secret`, as)).status).toBe(200);
    expect((await call('DELETE', `/admin/clients/${allowed.body.id}`, as)).status).toBe(204);
  });

  it('deletes a client with its grants; then it is gone (404) and cannot authenticate', async () => {
    const id = newId();
    const created = await create({ id, ...WEB });
    await app.database.db.insert(oauthGrants).values({ userId: user.userId, clientId: id, scopes: 'openid' });
    const res = await call('DELETE', `/admin/clients/${id}`, { token: admin.accessToken });
    expect(res.status).toBe(204);
    const gone = await call('GET', `/admin/clients/${id}`, { token: admin.accessToken });
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('client_not_found');
    expect(await app.database.db.select().from(oauthGrants).where(eq(oauthGrants.clientId, id))).toEqual([]);
    expect(await secretWorks(app.t, id, created.body.clientSecret)).toBe(false);
    expect((await call('DELETE', `/admin/clients/${id}`, { token: admin.accessToken })).status).toBe(404);
  });

  it('answers 400 for an id that cannot be one and 404 for an unknown one', async () => {
    expect((await call('GET', '/admin/clients/a', { token: admin.accessToken })).status).toBe(400);
    expect((await call('GET', '/admin/clients/no-such-client', { token: admin.accessToken })).status).toBe(404);
  });

  it('pages the list newest first with a cursor', async () => {
    const ids = [newId('page'), newId('page'), newId('page')];
    for (const id of ids) expect((await create({ id, ...WEB })).status).toBe(201);
    const first = await call('GET', '/admin/clients?limit=2', { token: admin.accessToken });
    expect(first.body.items.map((c: { id: string }) => c.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const next = await call('GET', `/admin/clients?limit=2&cursor=${first.body.nextCursor}`, { token: admin.accessToken });
    expect(next.body.items[0].id).toBe(ids[0]);
    expect((await call('GET', '/admin/clients?cursor=nonsense', { token: admin.accessToken })).status).toBe(400);
  });

  it('counts each client’s sign-ins per hour', async () => {
    const id = newId();
    expect((await create({ id, ...WEB })).status).toBe(201);
    countClientSignIn(app.t.services, id);
    countClientSignIn(app.t.services, id);
    const res = await call('GET', `/admin/clients/${id}/stats?hours=3`, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.buckets).toHaveLength(3);
    expect(res.body.buckets.map((b: { signIns: number }) => b.signIns)).toEqual([0, 0, 2]);
    expect(new Date(res.body.buckets[2].start).getTime() % 3_600_000).toBe(0);
    expect((await call('GET', `/admin/clients/${id}/stats?hours=169`, { token: admin.accessToken })).status).toBe(400);
    expect((await call('GET', '/admin/clients/no-such-client/stats', { token: admin.accessToken })).status).toBe(404);
  });

  it('ends the tokens issued to a client on rotation and on deletion, not on a role taken away', async () => {
    const service = { ...WEB, grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [] };
    const id = newId('svc');
    expect((await create({ id, ...service, roles: ['user', 'moderator'] })).status).toBe(201);
    /** Is a token issued to the client now (sid: a user's, through a sign-in) refused on its next use? */
    const tokenNow = async (sid?: string) => {
      const token = await signProviderAccessToken(app.t.services, {
        sub: sid ? user.userId : id,
        client_id: id,
        scope: 'openid',
        ...(sid ? { sid } : {}),
      });
      const claims = await verifyProviderAccessToken(app.t.services, token);
      return async () => providerTokenRevoked(app.t.services, claims!);
    };
    const sid = JSON.parse(Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString()).sid as string;

    let revoked = await tokenNow();
    expect(await revoked()).toBe(false);
    expect((await call('POST', `/admin/clients/${id}/secret`, { token: admin.accessToken })).status).toBe(200);
    expect(await revoked()).toBe(true);

    await new Promise((r) => setTimeout(r, 1100)); // tokens carry iat in whole seconds
    revoked = await tokenNow();
    const renamed = await call('PUT', `/admin/clients/${id}`, {
      token: admin.accessToken,
      body: { ...service, name: 'Renamed', roles: ['user', 'moderator'] },
    });
    expect(renamed.status).toBe(200);
    expect(await revoked()).toBe(false);
    const demoted = await call('PUT', `/admin/clients/${id}`, { token: admin.accessToken, body: { ...service, roles: ['user'] } });
    expect(demoted.status).toBe(200);
    // A role taken away keeps the token alive: the API judges it by the client's current roles (403 where the role was needed,
    // test/integration/service-clients.test.ts) and introspection calls it inactive.
    expect(await revoked()).toBe(false);

    const userToken = await tokenNow(sid);
    expect(await userToken()).toBe(false);
    expect((await call('DELETE', `/admin/clients/${id}`, { token: admin.accessToken })).status).toBe(204);
    expect(await userToken()).toBe(true);
  });
});

describe.each(BACKENDS)('secret rotation with an overlap on %s', (backend) => {
  const app = useTestApp(backend, { overrides: { OAUTH_SECRET_OVERLAP_SECONDS: '60' } });

  it('keeps the old secret working for OAUTH_SECRET_OVERLAP_SECONDS', async () => {
    const admin = await loginAdmin(app.call);
    const id = newId();
    const created = await app.call('POST', '/admin/clients', { token: admin.accessToken, body: { id, ...WEB } });
    const rotated = await app.call('POST', `/admin/clients/${id}/secret`, { token: admin.accessToken });
    expect(await secretWorks(app.t, id, created.body.clientSecret)).toBe(true);
    expect(await secretWorks(app.t, id, rotated.body.clientSecret)).toBe(true);
    // Another rotation: only the secret just replaced overlaps.
    const again = await app.call('POST', `/admin/clients/${id}/secret`, { token: admin.accessToken });
    expect(await secretWorks(app.t, id, created.body.clientSecret)).toBe(false);
    expect(await secretWorks(app.t, id, rotated.body.clientSecret)).toBe(true);
    expect(await secretWorks(app.t, id, again.body.clientSecret)).toBe(true);
  });
});

describe.each(BACKENDS)('OAUTH_CLIENTS_FILE on %s', (backend) => {
  const dir = mkdtempSync(join(tmpdir(), 'clients-file-'));
  const file = join(dir, 'clients.json');
  const SECRET_A = 'first-declared-secret-0123456789abcdef';
  const SECRET_B = 'second-declared-secret-0123456789abcdef';
  const declared = (name: string) => [
    { id: 'declared-web', ...WEB, name, clientSecretEnv: 'WEB_CLIENT_SECRET' },
    { id: 'declared-cli', name: 'CLI', type: 'public', redirectUris: ['http://127.0.0.1/callback'] },
  ];

  async function start(db: Awaited<ReturnType<typeof openDatabase>>, env: Record<string, string>): Promise<TestApp> {
    return createTestApp({ database: db.database, config: testConfig({ OAUTH_CLIENTS_FILE: file, ...env }) });
  }

  it('creates the declared clients at start, and updates them at the next start', async () => {
    const db = await openDatabase(backend);
    try {
      writeFileSync(file, JSON.stringify(declared('Declared web')));
      const first = await start(db, { WEB_CLIENT_SECRET: SECRET_A });
      const call: Call = client(first);
      const admin = await loginAdmin(call);
      const web = await call('GET', '/admin/clients/declared-web', { token: admin.accessToken });
      expect(web.status).toBe(200);
      expect(web.body).toMatchObject({ ...WEB, name: 'Declared web', source: 'file' });
      expect((await call('GET', '/admin/clients/declared-cli', { token: admin.accessToken })).body.type).toBe('public');
      expect(await secretWorks(first, 'declared-web', SECRET_A)).toBe(true);
      expect(first.logs.text).not.toContain(SECRET_A);
      await first.stop();

      writeFileSync(file, JSON.stringify(declared('Renamed web')));
      const second = await start(db, { WEB_CLIENT_SECRET: SECRET_B });
      const again = await client(second)('GET', '/admin/clients/declared-web', { token: (await loginAdmin(client(second))).accessToken });
      expect(again.body).toMatchObject({ name: 'Renamed web', createdAt: web.body.createdAt });
      expect(await secretWorks(second, 'declared-web', SECRET_B)).toBe(true);
      expect(await secretWorks(second, 'declared-web', SECRET_A)).toBe(false);
      await second.stop();
    } finally {
      await db.dispose();
    }
  });

  it('stops the start with a message naming every problem of the file', async () => {
    const db = await openDatabase(backend);
    try {
      writeFileSync(file, '[{"id": "x"');
      await expect(start(db, {})).rejects.toThrow(/OAUTH_CLIENTS_FILE .*not valid JSON/);
      writeFileSync(
        file,
        JSON.stringify([
          { id: 'bad-uri', ...WEB, redirectUris: ['http://app.example.com/cb'], clientSecretEnv: 'UNSET_SECRET' },
          { id: 'bad-secret', ...WEB, clientSecretEnv: 'SHORT_SECRET' },
          { id: 'no-env', ...WEB },
        ]),
      );
      const err = await start(db, { SHORT_SECRET: 'short' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toContain('bad-uri');
      expect(problems).toContain('redirectUris.0');
      expect(problems).toContain('UNSET_SECRET is not set');
      expect(problems).toContain('SHORT_SECRET must hold at least 32 characters');
      expect(problems).toContain('no-env');
      writeFileSync(file, JSON.stringify([{ id: 'x', unknownField: true }]));
      await expect(start(db, {})).rejects.toThrow(/OAUTH_CLIENTS_FILE/);
    } finally {
      await db.dispose();
    }
  });

  it('refuses a file that does not exist when the configuration is read', () => {
    expect(() => testConfig({ OAUTH_CLIENTS_FILE: join(dir, 'missing.json') })).toThrow(/OAUTH_CLIENTS_FILE: file not found/);
  });
});
