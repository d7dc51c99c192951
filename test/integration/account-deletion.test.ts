// Deleting an account (docs/api.md "Users": DELETE /users/me, DELETE /users/:id)
// and downloading one's data (GET /users/me/export), on both backends: what the
// user and the admins notice afterwards, the last-admin rule under concurrent
// deletions, and the effect on a second instance sharing PostgreSQL and Redis.
import { within } from '../helpers/eventually.js';
import { eq, inArray } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { auditLogs, emailTokens, posts, refreshTokens, sessions, users } from '../../src/db/schema.js';
import { deleteUser, ensureBootstrapAdmin } from '../../src/modules/users/users.service.js';
import { ALL_PERMISSIONS } from '../../src/security/permissions.js';
import { storeKeys } from '../../src/store/store.js';
import { ADMIN, type TestApp } from '../helpers/app.js';
import {
  client,
  login,
  loginAdmin,
  PASSWORD,
  read,
  registerAndLogin,
  typed,
  uniqueEmail,
  userWithRoles,
  type Res,
  type Session,
} from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTwoInstances } from '../helpers/two-instances.js';
import { useTestApp } from '../helpers/use-app.js';

const NIL = '00000000-0000-4000-8000-000000000000';
const BROWSER = 'TestBrowser/1.0';
/** What an admin holds, for calling the service directly. */
const ANY_ADMIN = { roles: ['admin'], permissions: new Set<string>(ALL_PERMISSIONS) };

const sidOf = (s: Session): string => JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString()).sid;
const tag = () => Math.random().toString(36).slice(2, 10);

type Stats = { users: { total: number; byRole: Record<string, number> }; posts: { total: number }; sessions: { active: number } };

// The helpers go through the typed client: a change to these routes breaks this file at compile time.
type On = Pick<TestApp, 'request'>;

async function stats(on: On, admin: Session): Promise<Stats> {
  const res = await typed(on, admin).api.admin.stats.$get();
  if (res.status !== 200) throw new Error(`GET /admin/stats: ${res.status} ${await res.text()}`);
  return res.json();
}

async function newPost(on: On, s: Session, title = `post ${tag()}`): Promise<string> {
  const res = await typed(on, s).api.posts.$post({ json: { title, body: 'some text' } });
  if (res.status !== 201) throw new Error(`POST /posts: ${res.status} ${await res.text()}`);
  return (await res.json()).id;
}

const listedPostIds = async (on: On): Promise<string[]> => {
  const res = await typed(on).api.posts.$get({ query: {} });
  if (res.status !== 200) throw new Error(`GET /posts: ${res.status} ${await res.text()}`);
  return (await res.json()).items.map((p) => p.id);
};

/** What a GET /users/me with this session's access token answers. */
const meStatus = async (on: On, s: Session) => (await typed(on, s).api.users.me.$get()).status as number;

/** Deleted by an admin (or a holder of users:delete). */
const deleteAs = (on: On, by: Session, userId: string) => typed(on, by).api.users[':id'].$delete({ param: { id: userId } });

/** The account is gone for its owner: tokens refused, password no longer signs in. */
async function expectGone(on: On, s: Session, password = PASSWORD) {
  const me = await read(await typed(on, s).api.users.me.$get());
  expect(me.status).toBe(401);
  expect(me.body.code).toBe('invalid_token');
  const refreshed = await read(await typed(on).api.auth.refresh.$post({ json: { refreshToken: s.refreshToken } }));
  expect(refreshed.status).toBe(401);
  expect(refreshed.body.code).toBe('invalid_refresh_token');
  const again = await read(await typed(on).login(s.email, password));
  expect(again.status).toBe(401);
  expect(again.body.code).toBe('invalid_credentials');
}

/** The one result with this status (exactly one has it). */
const one = (results: Res[], status: number) => {
  const hits = results.filter((r) => r.status === status);
  expect(hits, results.map((r) => `${r.status} ${r.text}`).join('; ')).toHaveLength(1);
  return hits[0]!;
};

describe.each(BACKENDS)('account deletion on %s', (backend) => {
  const app = useTestApp(backend);
  const { call } = app;
  let admin: Session;

  beforeAll(async () => {
    admin = await loginAdmin(call);
  });

  describe('deleting your own account', () => {
    it('ends every session, removes the posts from the list and the statistics, and lets nobody sign in with the old password', async () => {
      const s = await registerAndLogin(call);
      const other = await login(call, s.email, PASSWORD);
      const bystander = await registerAndLogin(call);
      const kept = await newPost(app.t, bystander);
      const mine = [await newPost(app.t, s), await newPost(app.t, s)];
      expect(await listedPostIds(app.t)).toEqual(expect.arrayContaining([...mine, kept]));
      await listedPostIds(app.t); // served from the first-page cache from now on
      const before = await stats(app.t, admin);

      const res = await typed(app.t, s).deleteAccount(PASSWORD);
      expect(res.status, await res.text()).toBe(204);

      await expectGone(app.t, s);
      const second = await call('GET', '/users/me/sessions', { token: other.accessToken });
      expect(second.status).toBe(401);
      expect(second.body.code).toBe('invalid_token');
      const listed = await listedPostIds(app.t);
      expect(listed).toContain(kept);
      for (const id of mine) {
        expect(listed).not.toContain(id);
        expect((await call('GET', `/posts/${id}`)).status).toBe(404);
      }
      expect((await call('GET', `/users/${s.userId}`, { token: admin.accessToken })).status).toBe(404);
      const after = await stats(app.t, admin);
      expect(after.users.total).toBe(before.users.total - 1);
      expect(after.users.byRole).toEqual({ ...before.users.byRole, user: before.users.byRole.user! - 1 });
      expect(after.posts.total).toBe(before.posts.total - 2);
      expect(after.sessions.active).toBe(before.sessions.active - 2);
      expect((await call('GET', '/users/me', { token: bystander.accessToken })).status).toBe(200);
    });

    it('lets the email be registered again, as a new account with nothing of the old one', async () => {
      const old = await registerAndLogin(call);
      await newPost(app.t, old);
      expect((await call('DELETE', '/users/me', { token: old.accessToken, body: { currentPassword: PASSWORD } })).status).toBe(204);
      const reborn = await registerAndLogin(call, { email: old.email, password: `${PASSWORD}-new` });
      expect(reborn.userId).not.toBe(old.userId);
      const sessionsNow = await call('GET', '/users/me/sessions', { token: reborn.accessToken });
      expect(sessionsNow.body.items.map((x: { id: string }) => x.id)).toEqual([sidOf(reborn)]);
      const exported = JSON.parse((await call('GET', '/users/me/export', { token: reborn.accessToken })).text);
      expect(exported.posts).toEqual([]);
      expect(exported.profile.id).toBe(reborn.userId);
      // The old password is not the new account's.
      expect((await call('POST', '/auth/login', { body: { email: old.email, password: PASSWORD } })).body.code).toBe('invalid_credentials');
      expect((await call('GET', '/users/me', { token: old.accessToken })).status).toBe(401);
    });

    it('keeps the deleted user’s audit entries under their id, with neither their email nor their name', async () => {
      const name = `Quokka ${tag()}`;
      const s = await registerAndLogin(call, { name });
      await call('PUT', '/users/me', { token: s.accessToken, body: { name: `${name} Renamed` } });
      await newPost(app.t, s);
      await call('GET', '/users/me/sessions', { token: s.accessToken });
      expect((await call('DELETE', '/users/me', { token: s.accessToken, body: { currentPassword: PASSWORD } })).status).toBe(204);
      await app.t.services.audit.idle();
      const res = await read(await typed(app.t, admin).api.admin.logs.$get({ query: { actorId: s.userId, limit: '100' } }));
      expect(res.status).toBe(200);
      const entries = res.body.items as { action: string; status: number; actorId: string }[];
      expect(entries.map((e) => e.action)).toEqual(expect.arrayContaining(['users.me.update', 'posts.create', 'users.me.delete']));
      expect(entries.find((e) => e.action === 'users.me.delete')!.status).toBe(204);
      expect(entries.every((e) => e.actorId === s.userId)).toBe(true);
      const text = JSON.stringify(entries).toLowerCase();
      expect(text).not.toContain(s.email.toLowerCase());
      expect(text).not.toContain(s.email.split('@')[0]!.toLowerCase());
      expect(text).not.toContain(name.toLowerCase());
    });

    it('refuses a wrong password (403 invalid_credentials) or a missing one (400 validation_failed), and keeps the account', async () => {
      const s = await registerAndLogin(call);
      const postId = await newPost(app.t, s);
      const wrong = await call('DELETE', '/users/me', { token: s.accessToken, body: { currentPassword: 'not-my-password-at-all' } });
      expect(wrong.status).toBe(403);
      expect(wrong.body.code).toBe('invalid_credentials');
      for (const body of [{}, { currentPassword: '' }]) {
        const missing = await call('DELETE', '/users/me', { token: s.accessToken, body });
        expect(missing.status, JSON.stringify(body)).toBe(400);
        expect(missing.body.code).toBe('validation_failed');
      }
      expect((await call('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
      expect((await call('GET', `/posts/${postId}`)).status).toBe(200);
      await login(call, s.email, PASSWORD);
    });

    it('refuses to let the last admin delete their own account (409 last_admin)', async () => {
      const res = await call('DELETE', '/users/me', { token: admin.accessToken, body: { currentPassword: ADMIN.password } });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('last_admin');
      expect((await call('GET', '/users/me', { token: admin.accessToken })).body.roles).toContain('admin');
    });
  });

  describe('an admin deleting a user', () => {
    it('ends their sessions, removes their posts and roles from the statistics, and frees their email', async () => {
      const s = await userWithRoles(call, admin, ['user', 'moderator']);
      const mine = [await newPost(app.t, s), await newPost(app.t, s), await newPost(app.t, s)];
      expect(await listedPostIds(app.t)).toEqual(expect.arrayContaining(mine));
      await listedPostIds(app.t);
      const before = await stats(app.t, admin);

      const res = await deleteAs(app.t, admin, s.userId);
      expect(res.status, await res.text()).toBe(204);

      await expectGone(app.t, s);
      const listed = await listedPostIds(app.t);
      for (const id of mine) expect(listed).not.toContain(id);
      const after = await stats(app.t, admin);
      expect(after.users.total).toBe(before.users.total - 1);
      expect(after.users.byRole).toEqual({
        ...before.users.byRole,
        user: before.users.byRole.user! - 1,
        moderator: before.users.byRole.moderator! - 1,
      });
      expect(after.posts.total).toBe(before.posts.total - 3);
      // userWithRoles signed in twice (before and after the assignment).
      expect(after.sessions.active).toBe(before.sessions.active - 2);
      expect((await call('POST', '/auth/register', { body: { email: s.email, password: PASSWORD, name: 'Again' } })).status).toBe(201);
      await app.t.services.audit.idle();
      const logs = await read(
        await typed(app.t, admin).api.admin.logs.$get({ query: { actorId: admin.userId, action: 'users.delete', limit: '10' } }),
      );
      expect(logs.body.items).toContainEqual(expect.objectContaining({ path: `/users/${s.userId}`, status: 204 }));
    });

    it('answers 404 for an unknown user and 400 for a malformed id', async () => {
      const unknown = await call('DELETE', `/users/${NIL}`, { token: admin.accessToken });
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('not_found');
      const malformed = await call('DELETE', '/users/not-an-id', { token: admin.accessToken });
      expect(malformed.status).toBe(400);
      expect(malformed.body.code).toBe('validation_failed');
    });

    it('refuses to delete the last admin, even when the admin asks for themselves (409 last_admin)', async () => {
      const res = await call('DELETE', `/users/${admin.userId}`, { token: admin.accessToken });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('last_admin');
      expect((await call('GET', `/users/${admin.userId}`, { token: admin.accessToken })).body.roles).toContain('admin');
    });

    it('lets a non-admin holding users:delete delete a user but not an admin (403 forbidden)', async () => {
      const role = `deleter${tag()}`;
      const created = await call('POST', '/roles', { token: admin.accessToken, body: { name: role, permissions: ['users:delete'] } });
      expect(created.status, created.text).toBe(201);
      const deleter = await userWithRoles(call, admin, ['user', role]);
      const second = await userWithRoles(call, admin, ['admin']);
      for (const target of [admin, second]) {
        const res = await call('DELETE', `/users/${target.userId}`, { token: deleter.accessToken });
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('forbidden');
        expect((await call('GET', '/users/me', { token: target.accessToken })).status).toBe(200);
      }
      const plain = await registerAndLogin(call);
      expect((await call('DELETE', `/users/${plain.userId}`, { token: deleter.accessToken })).status).toBe(204);
      await expectGone(app.t, plain);
      // Without the permission: 403 as well.
      const user = await registerAndLogin(call);
      const victim = await registerAndLogin(call);
      const refused = await call('DELETE', `/users/${victim.userId}`, { token: user.accessToken });
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe('forbidden');
      expect((await call('DELETE', `/users/${second.userId}`, { token: admin.accessToken })).status).toBe(204);
    });
  });

  describe('two admins deleting each other at the same time', () => {
    /** After a race the bootstrap admin may be gone: bring it back (as a restart would) and leave it the only admin. */
    async function restore(survivor: Session, other: Session) {
      await ensureBootstrapAdmin(app.t.services);
      admin = await loginAdmin(call);
      if (survivor.userId !== admin.userId) {
        expect((await call('DELETE', `/users/${survivor.userId}`, { token: admin.accessToken })).status).toBe(204);
      }
      expect(other.userId).not.toBe(admin.userId);
      const admins = await call('GET', '/users?role=admin&limit=100', { token: admin.accessToken });
      expect(admins.body.items.map((u: { id: string }) => u.id)).toEqual([admin.userId]);
    }

    /** Only `survivor` is an admin now, and the deleted one's token is refused. */
    async function expectOneAdminLeft(survivor: Session, deleted: Session) {
      const admins = await call('GET', '/users?role=admin&limit=100', { token: survivor.accessToken });
      expect(admins.status, admins.text).toBe(200);
      expect(admins.body.items.map((u: { id: string }) => u.id)).toEqual([survivor.userId]);
      expect((await stats(app.t, survivor)).users.byRole.admin).toBe(1);
      expect((await call('GET', '/users/me', { token: deleted.accessToken })).status).toBe(401);
    }

    it('deletes exactly one of them (DELETE /users/:id both ways): one 204, one 409 last_admin, one admin left', async () => {
      for (let round = 0; round < 3; round++) {
        const second = await userWithRoles(call, admin, ['admin']);
        const pair: [Session, Session] = [admin, second];
        // Both admins are signed in and active (their tokens already verified here), so both
        // requests are authenticated before either deletion commits.
        for (const s of pair) expect((await call('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
        // pair[i] deletes the other one: the caller whose request succeeded is left.
        const results = await Promise.all([
          call('DELETE', `/users/${second.userId}`, { token: admin.accessToken }),
          call('DELETE', `/users/${admin.userId}`, { token: second.accessToken }),
        ]);
        const won = results.indexOf(one(results, 204));
        expect(one(results, 409).body.code).toBe('last_admin');
        await expectOneAdminLeft(pair[won]!, pair[1 - won]!);
        await restore(pair[won]!, pair[1 - won]!);
      }
    });

    it('deletes exactly one of them (both DELETE /users/me at once): one 204, one 409 last_admin, one admin left', async () => {
      for (let round = 0; round < 3; round++) {
        const second = await userWithRoles(call, admin, ['admin']);
        const pair: [Session, Session] = [admin, second];
        for (const s of pair) expect((await call('GET', '/users/me', { token: s.accessToken })).status).toBe(200);
        // pair[i] deletes itself: the caller whose request was refused is left.
        const results = await Promise.all([
          call('DELETE', '/users/me', { token: admin.accessToken, body: { currentPassword: ADMIN.password } }),
          call('DELETE', '/users/me', { token: second.accessToken, body: { currentPassword: PASSWORD } }),
        ]);
        const won = results.indexOf(one(results, 204));
        expect(one(results, 409).body.code).toBe('last_admin');
        await expectOneAdminLeft(pair[1 - won]!, pair[won]!);
        await restore(pair[1 - won]!, pair[won]!);
      }
    });

    it('refuses one of two concurrent deletions of admins that both passed authorization (serializable check)', async () => {
      for (let round = 0; round < 3; round++) {
        const second = await userWithRoles(call, admin, ['admin']);
        const pair: [Session, Session] = [admin, second];
        const settled = await Promise.allSettled([
          deleteUser(app.t.services, ANY_ADMIN, second.userId),
          deleteUser(app.t.services, ANY_ADMIN, admin.userId),
        ]);
        const refused = settled.filter((r) => r.status === 'rejected');
        expect(refused).toHaveLength(1);
        expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'last_admin' });
        // settled[0] deleted second: then admin is left.
        const won = settled[0]!.status === 'fulfilled' ? 0 : 1;
        await expectOneAdminLeft(pair[won]!, pair[1 - won]!);
        await restore(pair[won]!, pair[1 - won]!);
      }
    });
  });

  describe('exporting your data', () => {
    it('downloads one JSON attachment with profile, sessions, every post and audit entry exactly once, and no secret', async () => {
      const email = uniqueEmail('export');
      const first = await registerAndLogin(call, { email, name: 'Exporting User' });
      const browser = await call('POST', '/auth/login', { body: { email, password: PASSWORD }, headers: { 'user-agent': BROWSER } });
      expect(browser.status).toBe(200);
      const refreshed = await call('POST', '/auth/refresh', { body: { refreshToken: browser.body.refreshToken } });
      expect(refreshed.status).toBe(200);
      const ended = await login(call, email, PASSWORD);
      expect((await call('POST', '/auth/logout', { body: { refreshToken: ended.refreshToken } })).status).toBe(204);
      const me: Session = {
        email,
        userId: first.userId,
        accessToken: refreshed.body.accessToken,
        refreshToken: refreshed.body.refreshToken,
      };
      const apiPosts = [await newPost(app.t, me, 'Über "quoted" \\ title'), await newPost(app.t, me)];
      const bystander = await registerAndLogin(call);
      const foreignPost = await newPost(app.t, bystander);

      // More than two pages (500 rows each) of posts, audit entries and sessions, straight into the
      // database; half of each share one timestamp, so the pages must break ties by id.
      const db = app.database.db;
      const tie = new Date(Date.now() - 86_400_000);
      const at = (i: number) => (i % 2 ? tie : new Date(tie.getTime() - i * 1000));
      const bulk = 1200;
      for (let from = 0; from < bulk; from += 400) {
        await db.insert(posts).values(
          Array.from({ length: 400 }, (_, j) => ({
            authorId: me.userId,
            title: `bulk ${from + j}`,
            body: `line one\nline "two" ${from + j}`,
            createdAt: at(from + j),
          })),
        );
      }
      await db.insert(auditLogs).values(
        Array.from({ length: 1100 }, (_, i) => ({
          at: at(i),
          requestId: `bulk-${i}`,
          actorId: me.userId,
          ip: '198.51.100.1',
          method: 'GET',
          path: '/posts',
          route: '/posts',
          status: 200,
          action: 'posts.list',
        })),
      );
      await db.insert(sessions).values(
        Array.from({ length: 600 }, (_, i) => ({
          userId: me.userId,
          createdAt: at(i),
          expiresAt: new Date(tie.getTime() + 1000),
          revokedAt: tie,
          revokedReason: 'logout',
          userAgent: `old ${i}`,
        })),
      );
      await app.t.services.audit.flush();
      const auditBefore = (await db.select({ id: auditLogs.id }).from(auditLogs).where(eq(auditLogs.actorId, me.userId))).map((r) => r.id);

      const res = await call('GET', '/users/me/export', { token: me.accessToken });
      expect(res.status, res.text.slice(0, 500)).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename=\S+/);
      const doc = JSON.parse(res.text);
      expect(Object.keys(doc).sort()).toEqual(
        ['auditLog', 'exportedAt', 'factors', 'format', 'identities', 'pendingEmailLinks', 'posts', 'profile', 'roles', 'sessions'].sort(),
      );
      expect(typeof doc.format).toBe('string');
      expect(new Date(doc.exportedAt).toISOString()).toBe(doc.exportedAt);
      expect(Object.keys(doc.profile).sort()).toEqual(['createdAt', 'email', 'emailVerified', 'id', 'mfa', 'name', 'roles', 'updatedAt']);
      expect(doc.profile).toMatchObject({ id: me.userId, email, name: 'Exporting User', roles: ['user'], emailVerified: false });
      expect(doc.roles).toEqual(['user']);
      expect(doc.factors).toBeDefined();
      expect(doc.pendingEmailLinks.map((l: { kind: string }) => l.kind)).toEqual(['verify_email']);

      // Sessions: the three sign-ins (one refreshed, one ended) and the 600 old ones, each once.
      const sessionKeys = ['createdAt', 'endedAt', 'endedBecause', 'expiresAt', 'id', 'ip', 'lastRefreshedAt', 'userAgent'];
      for (const s of doc.sessions) expect(Object.keys(s).sort()).toEqual(sessionKeys);
      const sessionIds = doc.sessions.map((s: { id: string }) => s.id);
      expect(new Set(sessionIds).size).toBe(sessionIds.length);
      const dbSessions = (await db.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, me.userId))).map((r) => r.id);
      expect(dbSessions).toHaveLength(603);
      expect([...sessionIds].sort()).toEqual([...dbSessions].sort());
      const byId = new Map(doc.sessions.map((s: { id: string }) => [s.id, s]));
      expect(byId.get(sidOf(first))).toMatchObject({ endedAt: null, endedBecause: null, lastRefreshedAt: null });
      expect(byId.get(sidOf(me))).toMatchObject({ userAgent: BROWSER, endedAt: null, lastRefreshedAt: expect.any(String) });
      expect(byId.get(sidOf(ended))).toMatchObject({ endedAt: expect.any(String), endedBecause: 'logout' });
      expect(sessionIds).not.toContain(sidOf(bystander));

      // Posts: every one exactly once, nobody else's.
      const postIds: string[] = doc.posts.map((p: { id: string }) => p.id);
      expect(postIds).toHaveLength(bulk + apiPosts.length);
      expect(new Set(postIds).size).toBe(postIds.length);
      const dbPosts = (await db.select({ id: posts.id }).from(posts).where(eq(posts.authorId, me.userId))).map((r) => r.id);
      expect([...postIds].sort()).toEqual([...dbPosts].sort());
      expect(postIds).toEqual(expect.arrayContaining(apiPosts));
      expect(postIds).not.toContain(foreignPost);
      for (const p of doc.posts) expect(Object.keys(p).sort()).toEqual(['body', 'createdAt', 'id', 'title']);
      expect(doc.posts.find((p: { id: string }) => p.id === apiPosts[0]).title).toBe('Über "quoted" \\ title');

      // Audit entries: the caller's own, every one once (the export's own entry may be among them).
      const auditIds: string[] = doc.auditLog.map((e: { id: string }) => e.id);
      expect(new Set(auditIds).size).toBe(auditIds.length);
      expect(auditBefore.length).toBeGreaterThan(1100);
      expect(auditIds).toEqual(expect.arrayContaining(auditBefore));
      const owners = await db.select({ actorId: auditLogs.actorId }).from(auditLogs).where(inArray(auditLogs.id, auditIds));
      expect(owners).toHaveLength(auditIds.length);
      expect(owners.every((o) => o.actorId === me.userId)).toBe(true);
      expect(doc.auditLog.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['posts.create', 'posts.list']));

      // No secret: no password hash, no token, no token hash.
      expect(res.text).not.toContain('$argon2');
      const [row] = await db.select({ hash: users.passwordHash }).from(users).where(eq(users.id, me.userId));
      expect(res.text).not.toContain(row!.hash);
      const tokens = [first, ended, me].flatMap((s) => [s.accessToken, s.refreshToken]);
      tokens.push(browser.body.accessToken, browser.body.refreshToken);
      for (const t of tokens) expect(res.text).not.toContain(t);
      const hashes = await db
        .select({ h: refreshTokens.tokenHash })
        .from(refreshTokens)
        .where(inArray(refreshTokens.sessionId, dbSessions));
      expect(hashes.length).toBeGreaterThanOrEqual(4);
      const mailed = await db.select({ h: emailTokens.tokenHash }).from(emailTokens).where(eq(emailTokens.userId, me.userId));
      for (const { h } of [...hashes, ...mailed]) expect(res.text).not.toContain(h);
    });

    it('exports exactly two full pages of posts (1000) without losing or repeating one', async () => {
      const s = await registerAndLogin(call);
      const tie = new Date(Date.now() - 3_600_000);
      await app.database.db
        .insert(posts)
        .values(Array.from({ length: 1000 }, (_, i) => ({ authorId: s.userId, title: `p${i}`, body: 'b', createdAt: tie })));
      const res = await call('GET', '/users/me/export', { token: s.accessToken });
      expect(res.status).toBe(200);
      const titles = (JSON.parse(res.text).posts as { title: string }[]).map((p) => p.title);
      expect(titles).toHaveLength(1000);
      expect(new Set(titles).size).toBe(1000);
    });

    it('no longer serves the export once the account is deleted', async () => {
      const s = await registerAndLogin(call);
      expect((await call('DELETE', '/users/me', { token: s.accessToken, body: { currentPassword: PASSWORD } })).status).toBe(204);
      const res = await call('GET', '/users/me/export', { token: s.accessToken });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('invalid_token');
    });
  });
});

describe('account deletion across two instances over one PostgreSQL and one Redis', () => {
  const two = useTwoInstances();
  let admin: Session;

  beforeAll(async () => {
    admin = await loginAdmin(client(two.a));
  });

  it('stops listing on B, within 100 ms, the posts of a user an admin deleted on A (B had the first page cached)', async () => {
    const { a, b } = two;
    const s = await registerAndLogin(client(a));
    const mine = [await newPost(a, s), await newPost(a, s)];
    expect(await listedPostIds(b)).toEqual(expect.arrayContaining(mine));
    expect(await listedPostIds(b)).toEqual(expect.arrayContaining(mine)); // from B's cache
    expect(await meStatus(b, s)).toBe(200);
    const before = await stats(b, admin);
    expect((await deleteAs(a, admin, s.userId)).status).toBe(204);
    // B hears of it from Redis's invalidation message, within milliseconds.
    expect(await within(100, async () => !(await listedPostIds(b)).some((id) => mine.includes(id)))).toBe(true);
    expect(await within(100, async () => (await meStatus(b, s)) === 401)).toBe(true);
    await expectGone(b, s);
    const after = await stats(b, admin);
    expect(after.users.total).toBe(before.users.total - 1);
    expect(after.posts.total).toBe(before.posts.total - 2);
    expect(after.sessions.active).toBe(before.sessions.active - 1);
  });

  it('leaves neither the cached profile nor the roles of a deleted user in Redis', async () => {
    const { a, b, stores } = two;
    const s = await registerAndLogin(client(a));
    expect(await meStatus(b, s)).toBe(200);
    const keys = [storeKeys.userProfile(s.userId), storeKeys.userRoles(s.userId)];
    for (const k of keys) expect(await stores[1]!.get(k), k).not.toBeNull();
    expect((await deleteAs(a, admin, s.userId)).status).toBe(204);
    // Read through A, whose own writes drop its near-cached copies at once: what Redis holds.
    // (B may serve its copy until Redis's invalidation message arrives, milliseconds later.)
    for (const k of keys) expect(await stores[0]!.get(k), k).toBeNull();
    expect(await within(100, async () => (await Promise.all(keys.map((k) => stores[1]!.get(k)))).every((v) => v === null))).toBe(true);
  });

  it('refuses on A, within 100 ms, an account its owner deleted on B, and lets the email register again', async () => {
    const { a, b } = two;
    const s = await registerAndLogin(client(a));
    const postId = await newPost(a, s);
    expect(await listedPostIds(a)).toContain(postId);
    await listedPostIds(a);
    expect(await meStatus(a, s)).toBe(200);
    expect((await typed(b, s).deleteAccount(PASSWORD)).status).toBe(204);
    // A hears of it from Redis's invalidation message, within milliseconds.
    expect(await within(100, async () => !(await listedPostIds(a)).includes(postId))).toBe(true);
    expect(await within(100, async () => (await meStatus(a, s)) === 401)).toBe(true);
    await expectGone(a, s);
    const again = await typed(a).api.auth.register.$post({ json: { email: s.email, password: PASSWORD, name: 'Back' } });
    expect(again.status).toBe(201);
  });
});
