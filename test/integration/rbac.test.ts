// RBAC (docs/api.md "Roles and permissions", "Users", "Roles", "Posts"), on both backends.
import { sql } from 'drizzle-orm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { metaOf } from '../../src/middleware/route-meta.js';
import { assignRoles } from '../../src/modules/users/users.service.js';
import { ALL_PERMISSIONS, BUILT_IN_DEFAULTS, type Permission } from '../../src/security/permissions.js';
import { totpCode } from '../../src/security/totp.js';
import { ADMIN } from '../helpers/app.js';
import { login, loginAdmin, read, registerAndLogin, typed, uniqueEmail, userWithRoles, PASSWORD, type Session } from '../helpers/http.js';
import { authorizePath, browserCookieFor, paramsOf, registerClient } from '../helpers/oauth.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';
import { SoftAuthenticator } from '../helpers/webauthn.js';

const NIL = '00000000-0000-4000-8000-000000000000';
/** What the two demoting admins hold, for calling the service directly. */
const ANY_ADMIN = { roles: ['admin'], permissions: new Set<string>(ALL_PERMISSIONS) };

describe.each(BACKENDS)('RBAC on %s', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;
  // Requests a well-formed client sends go through the typed client (over app.request()), so a
  // change to these routes breaks this file at compile time; the table of every guarded route and
  // malformed input stay raw requests.
  const t = (s?: { accessToken: string }) => typed(app.t, s);
  let admin: Session;

  beforeAll(async () => {
    admin = await loginAdmin(call);
  });

  const newPost = async (s: Session) => (await read(await t(s).api.posts.$post({ json: { title: 't', body: 'b' } }))).body.id as string;

  /** One request per guarded route, built fresh for each attempt (so allowed deletes have something to delete). */
  const claimsOf = (s: Session) => JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString());
  const passwordOf = (s: Session) => (s.email === ADMIN.email ? ADMIN.password : PASSWORD);
  /** Another sign-in of the same user: a session that is not the caller's current one. */
  const secondSession = async (s: Session) => login(call, s.email, passwordOf(s));
  const allowedApp = async (s: Session): Promise<string> => {
    const client = await registerClient(app.t, { firstParty: true });
    const res = await app.t.request(authorizePath(client), { headers: { cookie: await browserCookieFor(app.t, s) } });
    if (!paramsOf(res.headers.get('location')).get('code')) throw new Error(`authorize: ${res.status} ${res.headers.get('location')}`);
    return client.id;
  };
  /**
   * A new user holding the caller's roles: second factors are set up on it, so
   * the callers sign in as before. Deleted after each test (no extra admins stay).
   */
  const standIns: string[] = [];
  const standIn = async (who: Session) => {
    const s = await userWithRoles(call, admin, claimsOf(who).roles);
    standIns.push(s.userId);
    return s;
  };
  afterEach(async () => {
    for (const id of standIns.splice(0)) {
      const res = await read(await t(admin).api.users[':id'].$delete({ param: { id } }));
      expect(res.status, res.text).toBe(204);
    }
  });
  /** A stand-in with TOTP on (when its roles let it), and one of its recovery codes. */
  const withTotp = async (who: Session | null) => {
    if (!who) return { code: '000000' };
    const s = await standIn(who);
    const enrol = await read(await t(s).api.users.me.mfa.totp.$post({ json: { currentPassword: PASSWORD } }));
    const on =
      enrol.status === 200
        ? await read(await t(s).api.users.me.mfa.totp.confirm.$post({ json: { code: totpCode(enrol.body.secret, app.t.deps.clock()) } }))
        : undefined;
    return { token: s.accessToken, code: (on?.body.recoveryCodes?.[0] as string | undefined) ?? '000000' };
  };
  /** A registration response from a software authenticator, answering options fetched with this token. */
  const registration = async (token?: string) => {
    const options = token
      ? await read(await t({ accessToken: token }).api.users.me.passkeys.options.$post({ json: { currentPassword: PASSWORD } }))
      : undefined;
    const authenticator = new SoftAuthenticator({ origin: app.t.deps.config.webauthn.origins[0]! });
    // A refused caller gets no options: the response answers made-up ones (the guard refuses before reading it).
    return authenticator.register(
      options?.status === 200
        ? options.body
        : { challenge: 'bWFkZS11cA', rp: { name: 'x' }, user: { id: 'eA', name: 'x', displayName: 'x' }, pubKeyCredParams: [] },
    );
  };
  /** An OAuth client registered by the admin: its id. */
  const CLIENT = { name: 'Some app', redirectUris: ['https://app.example.com/cb'] };
  const CLIENT_FIELDS = {
    ...CLIENT,
    type: 'confidential',
    postLogoutRedirectUris: [],
    grantTypes: ['authorization_code'],
    scopes: ['openid'],
    firstParty: false,
    allowedOrigins: [],
    idTokenSignedResponseAlg: 'RS256',
    backchannelLogoutUri: null,
    audiences: [],
    roles: [],
  };
  const newClient = async (): Promise<string> => (await call('POST', '/admin/clients', { token: admin.accessToken, body: CLIENT })).body.id;
  const IDP = {
    type: 'oidc',
    name: 'SSO',
    issuer: 'https://sso.example.com',
    clientId: 'rbac',
    scopes: ['openid'],
    trustEmailVerified: false,
    enabled: true,
  };
  let idpSeq = 0;
  const newIdp = async (): Promise<string> => {
    const id = `rbac-idp-${Date.now().toString(36)}-${idpSeq++}`;
    expect((await call('POST', '/admin/identity-providers', { token: admin.accessToken, body: { id, ...IDP } })).status).toBe(201);
    return id;
  };
  const routeRequests: Record<string, (who: Session | null) => Promise<{ method: string; path: string; body?: unknown; token?: string }>> =
    {
      'POST /auth/register': async () => ({
        method: 'POST',
        path: '/auth/register',
        body: { email: uniqueEmail(), password: PASSWORD, name: 'M' },
      }),
      'GET /posts': async () => ({ method: 'GET', path: '/posts' }),
      'GET /posts/:id': async () => ({ method: 'GET', path: `/posts/${await newPost(admin)}` }),
      'POST /posts': async () => ({ method: 'POST', path: '/posts', body: { title: 'x', body: 'y' } }),
      // someone else's post: needs posts:delete:any
      'DELETE /posts/:id': async () => ({ method: 'DELETE', path: `/posts/${await newPost(admin)}` }),
      'GET /users/me': async () => ({ method: 'GET', path: '/users/me' }),
      'PUT /users/me': async () => ({ method: 'PUT', path: '/users/me', body: { name: 'Renamed' } }),
      'GET /users': async () => ({ method: 'GET', path: '/users' }),
      'GET /users/:id': async () => ({ method: 'GET', path: `/users/${admin.userId}` }),
      'PUT /users/:id/roles': async () => ({
        method: 'PUT',
        path: `/users/${(await registerAndLogin(call)).userId}/roles`,
        body: { roles: ['user'] },
      }),
      'GET /roles': async () => ({ method: 'GET', path: '/roles' }),
      'GET /permissions': async () => ({ method: 'GET', path: '/permissions' }),
      'POST /roles': async () => ({ method: 'POST', path: '/roles', body: { name: `r${Math.random().toString(36).slice(2, 10)}` } }),
      'PUT /roles/:role/permissions': async () => ({
        method: 'PUT',
        path: '/roles/moderator/permissions',
        body: { permissions: BUILT_IN_DEFAULTS.moderator.permissions },
      }),
      'DELETE /roles/:role': async () => {
        const name = `d${Math.random().toString(36).slice(2, 10)}`;
        await read(await t(admin).api.roles.$post({ json: { name } }));
        return { method: 'DELETE', path: `/roles/${name}` };
      },
      'GET /users/me/sessions': async () => ({ method: 'GET', path: '/users/me/sessions' }),
      'GET /users/me/grants': async () => ({ method: 'GET', path: '/users/me/grants' }),
      // An app the caller has allowed (a first-party client's authorization stores the grant).
      'DELETE /users/me/grants/:clientId': async (who) => ({
        method: 'DELETE',
        path: `/users/me/grants/${who ? await allowedApp(who) : 'no-such-app'}`,
      }),
      'DELETE /users/me/sessions/:id': async (who) => ({
        method: 'DELETE',
        path: `/users/me/sessions/${who ? claimsOf(await secondSession(who)).sid : NIL}`,
      }),
      'DELETE /users/me/sessions': async () => ({ method: 'DELETE', path: '/users/me/sessions' }),
      'DELETE /users/:id/sessions': async () => ({ method: 'DELETE', path: `/users/${(await registerAndLogin(call)).userId}/sessions` }),
      'GET /users/me/export': async () => ({ method: 'GET', path: '/users/me/export' }),
      // A stand-in holding the caller's roles is deleted, so the caller lives on for the next routes.
      'DELETE /users/me': async (who) => ({
        method: 'DELETE',
        path: '/users/me',
        body: { currentPassword: PASSWORD },
        ...(who ? { token: (await userWithRoles(call, admin, claimsOf(who).roles)).accessToken } : {}),
      }),
      'DELETE /users/:id': async () => ({ method: 'DELETE', path: `/users/${(await registerAndLogin(call)).userId}` }),
      // Enrolment only leaves a pending secret, so the caller itself enrols.
      'POST /users/me/mfa/totp': async (who) => ({
        method: 'POST',
        path: '/users/me/mfa/totp',
        body: { currentPassword: who ? passwordOf(who) : PASSWORD },
      }),
      'POST /users/me/mfa/totp/confirm': async (who) => {
        if (!who) return { method: 'POST', path: '/users/me/mfa/totp/confirm', body: { code: '000000' } };
        const s = await standIn(who);
        const enrol = await read(await t(s).api.users.me.mfa.totp.$post({ json: { currentPassword: PASSWORD } }));
        return {
          method: 'POST',
          path: '/users/me/mfa/totp/confirm',
          body: { code: enrol.status === 200 ? totpCode(enrol.body.secret, app.t.deps.clock()) : '000000' },
          token: s.accessToken,
        };
      },
      'DELETE /users/me/mfa/totp': async (who) => {
        const { token, code } = await withTotp(who);
        return { method: 'DELETE', path: '/users/me/mfa/totp', body: { currentPassword: PASSWORD, code }, ...(token ? { token } : {}) };
      },
      'POST /users/me/mfa/recovery-codes': async (who) => {
        const { token, code } = await withTotp(who);
        return {
          method: 'POST',
          path: '/users/me/mfa/recovery-codes',
          body: { currentPassword: PASSWORD, code },
          ...(token ? { token } : {}),
        };
      },
      // Not an admin: only a holder of admin resets an admin.
      'DELETE /users/:id/mfa': async () => ({ method: 'DELETE', path: `/users/${(await registerAndLogin(call)).userId}/mfa` }),
      'POST /users/me/passkeys/options': async (who) => ({
        method: 'POST',
        path: '/users/me/passkeys/options',
        body: { currentPassword: who ? passwordOf(who) : PASSWORD },
      }),
      'POST /users/me/passkeys': async (who) => {
        const s = who ? await standIn(who) : undefined;
        return {
          method: 'POST',
          path: '/users/me/passkeys',
          body: { name: 'Laptop', response: await registration(s?.accessToken) },
          ...(s ? { token: s.accessToken } : {}),
        };
      },
      'GET /users/me/passkeys': async () => ({ method: 'GET', path: '/users/me/passkeys' }),
      'DELETE /users/me/passkeys/:id': async (who) => {
        if (!who) return { method: 'DELETE', path: `/users/me/passkeys/${NIL}`, body: { currentPassword: PASSWORD } };
        const s = await standIn(who);
        const added = await read(
          await t(s).api.users.me.passkeys.$post({ json: { name: 'Laptop', response: await registration(s.accessToken) } }),
        );
        return {
          method: 'DELETE',
          path: `/users/me/passkeys/${added.status === 201 ? added.body.id : NIL}`,
          body: { currentPassword: PASSWORD },
          token: s.accessToken,
        };
      },
      'GET /admin/logs': async () => ({ method: 'GET', path: '/admin/logs' }),
      'GET /admin/stats': async () => ({ method: 'GET', path: '/admin/stats' }),
      'GET /admin/stats/timeline': async () => ({ method: 'GET', path: '/admin/stats/timeline' }),
      'GET /admin/clients': async () => ({ method: 'GET', path: '/admin/clients' }),
      'GET /admin/clients/:id': async () => ({ method: 'GET', path: `/admin/clients/${await newClient()}` }),
      'GET /admin/clients/:id/stats': async () => ({ method: 'GET', path: `/admin/clients/${await newClient()}/stats` }),
      'POST /admin/clients': async () => ({ method: 'POST', path: '/admin/clients', body: CLIENT }),
      'PUT /admin/clients/:id': async () => ({ method: 'PUT', path: `/admin/clients/${await newClient()}`, body: CLIENT_FIELDS }),
      'POST /admin/clients/:id/secret': async () => ({ method: 'POST', path: `/admin/clients/${await newClient()}/secret` }),
      'DELETE /admin/clients/:id': async () => ({ method: 'DELETE', path: `/admin/clients/${await newClient()}` }),
      'GET /admin/identity-providers': async () => ({ method: 'GET', path: '/admin/identity-providers' }),
      'GET /admin/identity-providers/:id': async () => ({ method: 'GET', path: `/admin/identity-providers/${await newIdp()}` }),
      'POST /admin/identity-providers': async () => ({
        method: 'POST',
        path: '/admin/identity-providers',
        body: { id: `rbac-new-${Date.now().toString(36)}-${idpSeq++}`, ...IDP },
      }),
      'PUT /admin/identity-providers/:id': async () => ({ method: 'PUT', path: `/admin/identity-providers/${await newIdp()}`, body: IDP }),
      'DELETE /admin/identity-providers/:id': async () => ({ method: 'DELETE', path: `/admin/identity-providers/${await newIdp()}` }),
    };

  /**
   * The route table, read from the app itself: METHOD path -> permission.
   * POST /auth/refresh is judged on the refresh token's user, not the caller,
   * and has its own tests in auth.test.ts.
   */
  const guardedRoutes = () => {
    const table = new Map<string, Permission>();
    for (const r of app.t.app.routes) {
      const meta = metaOf(r.handler);
      const key = `${r.method} ${r.path.replace(/\/$/, '') || '/'}`;
      if (meta?.permission && key !== 'POST /auth/refresh') table.set(key, meta.also?.[0] ?? meta.permission);
    }
    return table;
  };

  it('has a request for every guarded route, and a route for every permission', () => {
    const table = guardedRoutes();
    expect([...table.keys()].sort()).toEqual(Object.keys(routeRequests).sort());
    const used = new Set<string>();
    for (const r of app.t.app.routes) {
      const meta = metaOf(r.handler);
      if (meta?.permission) for (const p of [meta.permission, ...(meta.also ?? [])]) used.add(p);
    }
    expect([...used].sort()).toEqual([...ALL_PERMISSIONS]);
  });

  it('answers every guarded route as the permission table says, for every kind of caller', async () => {
    const premium: Permission[] = ['posts:read', 'posts:create', 'users:read', 'admin:stats:read'];
    await read(await t(admin).api.roles.$post({ json: { name: 'premium', permissions: premium } }));
    const callers: [string, Session | null, Set<string>][] = [
      ['anonymous', null, new Set(BUILT_IN_DEFAULTS.guest.permissions)],
      ['user', await registerAndLogin(call), new Set(BUILT_IN_DEFAULTS.user.permissions)],
      ['moderator', await userWithRoles(call, admin, ['moderator']), new Set(BUILT_IN_DEFAULTS.moderator.permissions)],
      ['admin', admin, new Set(ALL_PERMISSIONS)],
      ['premium', await userWithRoles(call, admin, ['premium']), new Set([...BUILT_IN_DEFAULTS.guest.permissions, ...premium])],
    ];
    const table = guardedRoutes();
    for (const [who, session, perms] of callers) {
      for (const [route, permission] of table) {
        const req = await routeRequests[route]!(session);
        const res = await call(req.method, req.path, { token: req.token ?? session?.accessToken, body: req.body });
        const label = `${who} ${route} (${permission})`;
        if (perms.has(permission)) {
          expect([200, 201, 204], `${label}: ${res.text}`).toContain(res.status);
        } else if (!session) {
          expect(res.status, label).toBe(401);
          expect(res.body.code, label).toBe('unauthenticated');
        } else {
          expect(res.status, label).toBe(403);
          expect(res.body.code, label).toBe('forbidden');
          expect(res.body.detail, label).toContain(permission);
        }
      }
    }
  });

  it('grants and removes permissions on the very next request with the same token', async () => {
    const s = await registerAndLogin(call);
    expect((await read(await t(s).api.users.$get({ query: {} }))).status).toBe(403);
    await read(await t(admin).api.users[':id'].roles.$put({ param: { id: s.userId }, json: { roles: ['user', 'moderator'] } }));
    expect((await read(await t(s).api.users.$get({ query: {} }))).status).toBe(200);
    await read(await t(admin).api.users[':id'].roles.$put({ param: { id: s.userId }, json: { roles: ['user'] } }));
    expect((await read(await t(s).api.users.$get({ query: {} }))).status).toBe(403);
  });

  it('applies a change of a role’s permissions to its members on their next request', async () => {
    const name = `editor${Math.random().toString(36).slice(2, 8)}`;
    await read(await t(admin).api.roles.$post({ json: { name, permissions: ['posts:read'] } }));
    const s = await userWithRoles(call, admin, ['user', name]);
    expect((await read(await t(s).api.admin.stats.$get())).status).toBe(403);
    const upd = await read(
      await t(admin).api.roles[':role'].permissions.$put({ param: { role: name }, json: { permissions: ['admin:stats:read'] } }),
    );
    expect(upd.status).toBe(200);
    expect(upd.body).toMatchObject({ name, permissions: ['admin:stats:read'], builtIn: false, userCount: 1 });
    expect((await read(await t(s).api.admin.stats.$get())).status).toBe(200);
    expect((await read(await t(admin).api.roles[':role'].$delete({ param: { role: name } }))).status).toBe(204);
    expect((await read(await t(s).api.admin.stats.$get())).status).toBe(403);
    expect((await read(await t(s).api.users.me.$get())).body.roles).toEqual(['user']);
  });

  describe('delegated administration stays within what the delegate holds', () => {
    const role = async (name: string, permissions: Permission[]) => {
      const res = await read(await t(admin).api.roles.$post({ json: { name, permissions } }));
      expect(res.status, res.text).toBe(201);
    };
    const tag = () => Math.random().toString(36).slice(2, 8);
    const refused = (res: { status: number; body: any }, permission: string) => {
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect(res.body.detail).toContain(permission);
    };

    it('lets only an admin grant or remove the admin role, and nobody grant a role carrying a permission they lack', async () => {
      const name = `assigner-${tag()}`;
      await role(name, ['users:roles:assign', 'users:read']);
      const d = await userWithRoles(call, admin, ['user', name]);
      const other = await registerAndLogin(call);
      refused(
        await read(await t(d).api.users[':id'].roles.$put({ param: { id: d.userId }, json: { roles: ['user', name, 'admin'] } })),
        'admin',
      );
      refused(await read(await t(d).api.users[':id'].roles.$put({ param: { id: admin.userId }, json: { roles: ['user'] } })), 'admin');
      refused(await read(await t(d).api.users[':id'].roles.$put({ param: { id: other.userId }, json: { roles: ['admin'] } })), 'admin');
      // moderator carries posts:delete:any, which the delegate lacks.
      refused(
        await read(await t(d).api.users[':id'].roles.$put({ param: { id: other.userId }, json: { roles: ['user', 'moderator'] } })),
        'posts:delete:any',
      );
      // Within what it holds, delegation works: its own role and user.
      const ok = await read(await t(d).api.users[':id'].roles.$put({ param: { id: other.userId }, json: { roles: ['user', name] } }));
      expect(ok.status).toBe(200);
      expect(ok.body.roles).toEqual(['user', name].sort());
      // An admin holds what the delegate lacks: not even the admin's other roles change.
      const adminRoles = (await read(await t(admin).api.users[':id'].$get({ param: { id: admin.userId } }))).body.roles;
      const upward = await read(
        await t(d).api.users[':id'].roles.$put({ param: { id: admin.userId }, json: { roles: ['admin', 'user'] } }),
      );
      expect(upward.status).toBe(403);
      expect(upward.body.code).toBe('forbidden');
      expect((await read(await t(admin).api.users[':id'].$get({ param: { id: admin.userId } }))).body.roles).toEqual(adminRoles);
      await app.t.services.audit.flush();
      const entry = (await call('GET', `/admin/logs?actorId=${d.userId}&status=403&limit=10`, { token: admin.accessToken })).body.items;
      expect(entry.map((e: { detail: string }) => e.detail)).toContain('escalation_refused: admin');
    });

    it('never lets a delegate act on a user holding a permission it lacks (an admin, a custom all-permissions role), audited; a plain user it can', async () => {
      // The custom roles are built through the API, as an operator would.
      const helpdesk = `helpdesk-${tag()}`;
      await role(helpdesk, ['users:sessions:revoke', 'users:mfa:reset', 'users:roles:assign', 'users:delete', 'users:read']);
      const superuser = `superuser-${tag()}`;
      await role(superuser, [...ALL_PERMISSIONS]);
      const desk = await userWithRoles(call, admin, ['user', helpdesk]);
      const deskPermissions: string[] = (await read(await t(desk).api.users.me.$get())).body.permissions;
      // The first permission (catalogue order) the targets hold and the desk does not.
      const lacking = ALL_PERMISSIONS.find((p) => !deskPermissions.includes(p))!;
      /** A target with TOTP on (so a reset has something to remove) and a live session. */
      const withFactor = async (s: Session) => {
        const enrol = await read(await t(s).api.users.me.mfa.totp.$post({ json: { currentPassword: PASSWORD } }));
        expect(enrol.status, enrol.text).toBe(200);
        const on = await read(
          await t(s).api.users.me.mfa.totp.confirm.$post({ json: { code: totpCode(enrol.body.secret, app.t.deps.clock()) } }),
        );
        expect(on.status, on.text).toBe(200);
        return s;
      };
      const secondAdmin = await withFactor(await standIn(admin));
      const powerful = await withFactor(await userWithRoles(call, admin, ['user', superuser]));
      const stateOf = async (s: Session) => {
        const u = await read(await t(admin).api.users[':id'].$get({ param: { id: s.userId } }));
        const me = await read(await t(s).api.users.me.$get());
        return { status: u.status, roles: u.body.roles, mfa: u.body.mfa, signedIn: me.status };
      };
      const refusals: { method: string; path: string; detail: string }[] = [];
      const expectRefused = async (method: string, path: string, body: unknown, reason: string) => {
        const res = await call(method, path, { token: desk.accessToken, body });
        expect(res.status, `${method} ${path}: ${res.text}`).toBe(403);
        expect(res.body.code).toBe('forbidden');
        expect(res.body.detail).toContain(reason);
        refusals.push({ method, path, detail: `escalation_refused: ${reason}` });
      };
      for (const [target, keep] of [
        [secondAdmin, ['admin']],
        [powerful, ['user', superuser]],
      ] as const) {
        const before = await stateOf(target);
        expect(before).toMatchObject({ status: 200, mfa: { totp: true }, signedIn: 200 });
        const isAdmin = keep.includes('admin');
        await expectRefused('DELETE', `/users/${target.userId}/sessions`, undefined, lacking);
        await expectRefused('DELETE', `/users/${target.userId}/mfa`, undefined, isAdmin ? 'admin' : lacking);
        // Keeping admin (the admin-only rule stays silent) and adding what the desk holds.
        await expectRefused('PUT', `/users/${target.userId}/roles`, { roles: [...keep, helpdesk] }, lacking);
        await expectRefused('PUT', `/users/${target.userId}/roles`, { roles: ['user'] }, isAdmin ? 'admin' : lacking);
        await expectRefused('DELETE', `/users/${target.userId}`, undefined, isAdmin ? 'admin' : lacking);
        // Untouched: the same session works, the factor is there, the roles and the account are as they were.
        expect(await stateOf(target)).toEqual(before);
      }
      // Ending every admin's sessions in a loop locks nobody out.
      const admins = (await read(await t(desk).api.users.$get({ query: { role: 'admin', limit: '100' } }))).body.items as { id: string }[];
      expect(admins.map((u) => u.id)).toEqual(expect.arrayContaining([admin.userId, secondAdmin.userId]));
      for (let round = 0; round < 3; round++) {
        for (const u of admins) await expectRefused('DELETE', `/users/${u.id}/sessions`, undefined, lacking);
      }
      for (const s of [admin, secondAdmin]) expect((await read(await t(s).api.users.me.$get())).status).toBe(200);
      // Each refusal is in the audit log with the permission it lacked.
      await app.t.services.audit.flush();
      const logged = (await read(await t(admin).api.admin.logs.$get({ query: { actorId: desk.userId, status: '403', limit: '100' } }))).body
        .items as { method: string; path: string; detail: string }[];
      const seen = logged.map((e) => ({ method: e.method, path: e.path, detail: e.detail }));
      expect(seen).toHaveLength(refusals.length);
      expect(seen).toEqual(expect.arrayContaining(refusals));

      // Downward it works: a plain user holds less than the desk.
      const plain = await withFactor(await registerAndLogin(call));
      const roles = await read(
        await t(desk).api.users[':id'].roles.$put({ param: { id: plain.userId }, json: { roles: ['user', helpdesk] } }),
      );
      expect(roles.status, roles.text).toBe(200);
      expect(roles.body.roles).toEqual(['user', helpdesk].sort());
      expect((await read(await t(desk).api.users[':id'].sessions.$delete({ param: { id: plain.userId } }))).status).toBe(204);
      expect((await read(await t(plain).api.users.me.$get())).status).toBe(401);
      expect((await read(await t(desk).api.users[':id'].mfa.$delete({ param: { id: plain.userId } }))).status).toBe(204);
      expect((await read(await t(admin).api.users[':id'].$get({ param: { id: plain.userId } }))).body.mfa).toEqual({
        totp: false,
        passkeys: 0,
      });
      expect((await read(await t(desk).api.users[':id'].$delete({ param: { id: plain.userId } }))).status).toBe(204);
      expect((await read(await t(admin).api.users[':id'].$get({ param: { id: plain.userId } }))).status).toBe(404);
      // The superuser-role user is not an admin: an admin removes it.
      expect((await read(await t(admin).api.users[':id'].$delete({ param: { id: powerful.userId } }))).status).toBe(204);
    });

    it('lets nobody add to a role, or create one with, a permission they do not hold', async () => {
      const name = `editor-${tag()}`;
      await role(name, ['roles:update', 'roles:create', 'roles:read']);
      const e = await userWithRoles(call, admin, ['user', name]);
      refused(
        await read(
          await t(e).api.roles[':role'].permissions.$put({
            param: { role: name },
            json: { permissions: ['roles:update', 'roles:create', 'roles:read', 'users:roles:assign'] },
          }),
        ),
        'users:roles:assign',
      );
      refused(
        await read(
          await t(e).api.roles[':role'].permissions.$put({
            param: { role: 'user' },
            json: { permissions: [...BUILT_IN_DEFAULTS.user.permissions, 'admin:logs:read'] },
          }),
        ),
        'admin:logs:read',
      );
      refused(await read(await t(e).api.roles.$post({ json: { name: `mine-${tag()}`, permissions: ['users:read'] } })), 'users:read');
      // Removing, and adding what it holds, are fine.
      const trimmed = await read(
        await t(e).api.roles[':role'].permissions.$put({
          param: { role: name },
          json: { permissions: ['roles:update', 'roles:read', 'roles:create', 'posts:read'] },
        }),
      );
      expect(trimmed.status).toBe(200);
      expect(
        (await read(await t(e).api.roles.$post({ json: { name: `mine-${tag()}`, permissions: ['posts:read', 'roles:read'] } }))).status,
      ).toBe(201);
      expect((await read(await t(e).api.users.me.$get())).body.permissions).not.toContain('users:roles:assign');
    });

    it('never lets the guest role hold a permission outside auth:register and posts:read, whatever the database says', async () => {
      refused(
        await read(
          await t(admin).api.roles[':role'].permissions.$put({
            param: { role: 'guest' },
            json: { permissions: ['auth:register', 'posts:read', 'users:roles:assign'] },
          }),
        ),
        'users:roles:assign',
      );
      refused(
        await read(
          await t(admin).api.roles[':role'].permissions.$put({ param: { role: 'guest' }, json: { permissions: ['auth:refresh'] } }),
        ),
        'auth:refresh',
      );
      const victim = await registerAndLogin(call);
      // A row written before this rule (or by hand) gives anonymous callers nothing.
      await app.database.db.execute(sql`INSERT INTO role_permissions (role_name, permission) VALUES ('guest', 'users:roles:assign')`);
      try {
        await read(
          await t(admin).api.roles[':role'].permissions.$put({
            param: { role: 'user' },
            json: { permissions: BUILT_IN_DEFAULTS.user.permissions },
          }),
        ); // bumps the roles version
        const anon = await read(await t().api.users[':id'].roles.$put({ param: { id: victim.userId }, json: { roles: ['admin'] } }));
        expect(anon.status).toBe(401);
        expect(anon.body.code).toBe('unauthenticated');
        const guest = (await read(await t(admin).api.roles.$get())).body.items.find((r: { name: string }) => r.name === 'guest');
        expect(guest.permissions).toEqual(['auth:register', 'posts:read']);
      } finally {
        await app.database.db.execute(sql`DELETE FROM role_permissions WHERE role_name = 'guest' AND permission = 'users:roles:assign'`);
      }
      expect((await read(await t(admin).api.users[':id'].$get({ param: { id: victim.userId } }))).body.roles).toEqual(['user']);
    });
  });

  it('applies a change of the guest role to anonymous callers', async () => {
    expect((await read(await t().api.posts.$get({ query: {} }))).status).toBe(200);
    await read(await t(admin).api.roles[':role'].permissions.$put({ param: { role: 'guest' }, json: { permissions: ['auth:register'] } }));
    try {
      const res = await read(await t().api.posts.$get({ query: {} }));
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('unauthenticated');
    } finally {
      await read(
        await t(admin).api.roles[':role'].permissions.$put({
          param: { role: 'guest' },
          json: { permissions: BUILT_IN_DEFAULTS.guest.permissions },
        }),
      );
    }
    expect((await read(await t().api.posts.$get({ query: {} }))).status).toBe(200);
  });

  describe('roles administration', () => {
    it('lists roles with permissions, built-in flag and member counts, and the catalogue', async () => {
      const roles = await read(await t(admin).api.roles.$get());
      const byName = Object.fromEntries(roles.body.items.map((r: { name: string }) => [r.name, r]));
      expect(byName.admin).toMatchObject({ builtIn: true, permissions: [...ALL_PERMISSIONS] });
      expect(byName.admin.userCount).toBeGreaterThanOrEqual(1);
      expect(byName.user).toMatchObject({ builtIn: true, permissions: [...BUILT_IN_DEFAULTS.user.permissions].sort() });
      const perms = await read(await t(admin).api.permissions.$get());
      expect(perms.body.items.map((p: { name: string }) => p.name)).toEqual([...ALL_PERMISSIONS]);
      expect(perms.body.items.every((p: { description: string }) => p.description.length > 0)).toBe(true);
    });

    it('enforces names, uniqueness, known permissions and locks', async () => {
      const api = t(admin).api;
      const created = await read(
        await api.roles.$post({
          json: { name: 'support_agent', description: 'Support', permissions: ['users:read'] },
        }),
      );
      expect(created.status).toBe(201);
      expect(created.body).toEqual({
        name: 'support_agent',
        description: 'Support',
        permissions: ['users:read'],
        builtIn: false,
        userCount: 0,
      });
      expect((await read(await api.roles.$post({ json: { name: 'support_agent' } }))).body.code).toBe('role_exists');
      expect((await read(await api.roles.$post({ json: { name: 'x', permissions: [] } }))).body.code).toBe('validation_failed');
      expect((await read(await api.roles.$post({ json: { name: 'Bad Name' } }))).body.code).toBe('validation_failed');
      const unknown = await read(await api.roles.$post({ json: { name: 'ghosts', permissions: ['posts:fly'] } }));
      expect(unknown.status).toBe(400);
      expect(unknown.body.code).toBe('unknown_permission');
      expect(
        (await read(await api.roles[':role'].permissions.$put({ param: { role: 'admin' }, json: { permissions: [] } }))).body.code,
      ).toBe('role_locked');
      for (const builtIn of ['guest', 'user', 'moderator', 'admin']) {
        const res = await read(await api.roles[':role'].$delete({ param: { role: builtIn } }));
        expect(res.status).toBe(409);
        expect(res.body.code).toBe('role_locked');
      }
      expect((await read(await api.roles[':role'].permissions.$put({ param: { role: 'nosuch' }, json: { permissions: [] } }))).status).toBe(
        404,
      );
      expect((await read(await api.roles[':role'].$delete({ param: { role: 'nosuch' } }))).status).toBe(404);
    });
  });

  describe('users administration', () => {
    it('replaces roles, refuses unknown roles, and returns the user', async () => {
      const s = await registerAndLogin(call);
      const res = await read(
        await t(admin).api.users[':id'].roles.$put({ param: { id: s.userId }, json: { roles: ['moderator', 'user', 'user'] } }),
      );
      expect(res.status).toBe(200);
      expect(res.body.roles).toEqual(['moderator', 'user']);
      const unknown = await read(await t(admin).api.users[':id'].roles.$put({ param: { id: s.userId }, json: { roles: ['wizard'] } }));
      expect(unknown.status).toBe(400);
      expect(unknown.body.code).toBe('unknown_role');
      expect((await read(await t(admin).api.users[':id'].roles.$put({ param: { id: s.userId }, json: { roles: [] } }))).status).toBe(400);
      expect((await read(await t(admin).api.users[':id'].roles.$put({ param: { id: NIL }, json: { roles: ['user'] } }))).status).toBe(404);
    });

    it('never lets the last admin lose admin, even when two admins demote each other at once', async () => {
      const second = await userWithRoles(call, admin, ['admin']);
      const [a, b] = await Promise.all([
        t(admin)
          .api.users[':id'].roles.$put({ param: { id: second.userId }, json: { roles: ['user'] } })
          .then(read),
        t(second)
          .api.users[':id'].roles.$put({ param: { id: admin.userId }, json: { roles: ['user'] } })
          .then(read),
      ]);
      // One wins; the other is refused: last_admin, or forbidden when the
      // winner's change was already in force when the loser was authorized.
      expect([a.status, b.status].filter((s) => s === 200)).toHaveLength(1);
      expect(['last_admin', 'forbidden']).toContain([a, b].find((r) => r.status !== 200)!.body.code);
      const admins = await read(
        await t({ accessToken: (a.status === 200 ? admin : second).accessToken }).api.users.$get({
          query: { role: 'admin', limit: '100' },
        }),
      );
      expect(admins.body.items).toHaveLength(1);
      // Restore: whoever remains makes the bootstrap admin an admin again.
      if (b.status === 200) {
        await read(await t(second).api.users[':id'].roles.$put({ param: { id: admin.userId }, json: { roles: ['admin'] } }));
        await read(await t(admin).api.users[':id'].roles.$put({ param: { id: second.userId }, json: { roles: ['user'] } }));
      }
      const last = await read(await t(admin).api.users[':id'].roles.$put({ param: { id: admin.userId }, json: { roles: ['user'] } }));
      expect(last.status).toBe(409);
      expect(last.body.code).toBe('last_admin');
    });

    it('refuses one of two concurrent demotions that both passed authorization (serializable check)', async () => {
      const second = await userWithRoles(call, admin, ['admin']);
      const results = await Promise.allSettled([
        assignRoles(app.t.services, ANY_ADMIN, second.userId, ['user']),
        assignRoles(app.t.services, ANY_ADMIN, admin.userId, ['user']),
      ]);
      const refused = results.filter((r) => r.status === 'rejected');
      expect(refused).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'last_admin' });
      const admins = (
        await read(await t({ accessToken: (results[0].status === 'fulfilled' ? admin : second).accessToken }).api.roles.$get())
      ).body.items.find((r: { name: string }) => r.name === 'admin');
      expect(admins.userCount).toBe(1);
      if (results[1].status === 'fulfilled') {
        await assignRoles(app.t.services, ANY_ADMIN, admin.userId, ['admin']);
        await assignRoles(app.t.services, ANY_ADMIN, second.userId, ['user']);
      }
    });

    it('lists users newest first with keyset pages, role filter and a safe search', async () => {
      const tag = Math.random().toString(36).slice(2, 8);
      for (let i = 0; i < 5; i++) await registerAndLogin(call, { email: uniqueEmail(`find${tag}`), name: `Findable ${tag} ${i}` });
      const first = await read(await t(admin).api.users.$get({ query: { q: tag, limit: '2' } }));
      expect(first.status).toBe(200);
      expect(first.body.items).toHaveLength(2);
      const seen = [...first.body.items];
      let cursor = first.body.nextCursor;
      while (cursor) {
        const page = await read(await t(admin).api.users.$get({ query: { q: tag, limit: '2', cursor } }));
        seen.push(...page.body.items);
        cursor = page.body.nextCursor;
      }
      expect(seen.map((u) => u.name)).toEqual([4, 3, 2, 1, 0].map((i) => `Findable ${tag} ${i}`));
      const injection = await read(await t(admin).api.users.$get({ query: { q: "%' OR 1=1 --" } }));
      expect(injection.status).toBe(200);
      expect(injection.body.items).toEqual([]);
      const wildcard = await read(await t(admin).api.users.$get({ query: { q: '%' } }));
      expect(wildcard.body.items).toEqual([]);
      const mods = await read(await t(admin).api.users.$get({ query: { role: 'moderator', limit: '100' } }));
      expect(mods.body.items.every((u: { roles: string[] }) => u.roles.includes('moderator'))).toBe(true);
      expect((await call('GET', '/users?cursor=garbage', { token: admin.accessToken })).status).toBe(400);
      expect((await call('GET', '/users?sort=name', { token: admin.accessToken })).status).toBe(400);
    });
  });

  describe('posts', () => {
    it('applies ownership: own with delete:own, anyone’s with delete:any, 404 before ownership', async () => {
      const author = await registerAndLogin(call);
      const other = await registerAndLogin(call);
      const mod = await userWithRoles(call, admin, ['moderator']);
      const p1 = await newPost(author);
      const forbidden = await read(await t(other).api.posts[':id'].$delete({ param: { id: p1 } }));
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.detail).toContain('posts:delete:any');
      expect((await read(await t().api.posts[':id'].$delete({ param: { id: p1 } }))).status).toBe(401);
      expect((await read(await t(author).api.posts[':id'].$delete({ param: { id: p1 } }))).status).toBe(204);
      expect((await read(await t().api.posts[':id'].$get({ param: { id: p1 } }))).status).toBe(404);
      const p2 = await newPost(author);
      expect((await read(await t(mod).api.posts[':id'].$delete({ param: { id: p2 } }))).status).toBe(204);
      expect((await read(await t().api.posts[':id'].$delete({ param: { id: NIL } }))).status).toBe(404);
      expect((await read(await t(other).api.posts[':id'].$delete({ param: { id: NIL } }))).status).toBe(404);
    });

    it('lets exactly one of parallel deletions of a post succeed', async () => {
      const author = await registerAndLogin(call);
      const id = await newPost(author);
      const results = await Promise.all(Array.from({ length: 20 }, () => t(author).api.posts[':id'].$delete({ param: { id } }).then(read)));
      expect(results.map((r) => r.status).sort()).toEqual([204, ...Array<number>(19).fill(404)]);
    });

    it('pages 25 posts by 10, newest first, each seen once', async () => {
      const author = await registerAndLogin(call);
      const created: string[] = [];
      for (let i = 0; i < 25; i++) {
        const res = await read(await t(author).api.posts.$post({ json: { title: `p${i}`, body: 'b' } }));
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({ title: `p${i}`, body: 'b', authorId: author.userId });
        created.push(res.body.id);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { body: { items: { id: string; authorId: string }[]; nextCursor: string | null } } = await read(
          await t().api.posts.$get({ query: { limit: '10', ...(cursor ? { cursor } : {}) } }),
        );
        expect(page.body.items.length).toBeLessThanOrEqual(10);
        seen.push(...page.body.items.filter((p) => p.authorId === author.userId).map((p) => p.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(seen).toEqual([...created].reverse());
      // Without ?limit a page holds 20 (the contract's default).
      const first = await read(await t().api.posts.$get({ query: {} }));
      expect(first.body.items).toHaveLength(20);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      expect(new Set(seen).size).toBe(25);
      const tooMany = await read(await t().api.posts.$get({ query: { limit: '101' } }));
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.errors[0].path).toBe('limit');
      expect((await read(await t().api.posts.$get({ query: { limit: '0' } }))).status).toBe(400);
      expect((await call('GET', '/posts?limit=abc')).status).toBe(400);
    });

    it('validates post bodies', async () => {
      const s = await registerAndLogin(call);
      for (const body of [
        { title: '', body: 'b' },
        { title: 'x'.repeat(201), body: 'b' },
        { title: 't', body: 'x'.repeat(10_001) },
        { title: 't' },
        { title: 't', body: 'b', authorId: NIL },
      ]) {
        const res = await call('POST', '/posts', { token: s.accessToken, body });
        expect(res.status, JSON.stringify(body).slice(0, 50)).toBe(400);
      }
    });
  });
});
