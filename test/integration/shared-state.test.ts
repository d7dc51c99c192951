// Shared state on Redis: two app instances over one PostgreSQL database and one
// Redis, in one process, as two servers behind a load balancer would be.
// Requests go through the typed client, so a route's change breaks this file at compile time.
import { describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { sleep, until, within } from '../helpers/eventually.js';
import { client, login, loginAdmin, read, registerAndLogin, type Session, typed } from '../helpers/http.js';
import { useTwoInstances } from '../helpers/two-instances.js';

/** Polls until the check passes, failing after 1.5 s (the contract allows 1 s of propagation). */
const within1500 = (what: string, check: () => Promise<boolean>) => until(what, check, { timeoutMs: 1500, everyMs: 20 });

describe('two instances over one PostgreSQL and one Redis', () => {
  const two = useTwoInstances({ overrides: { RATE_LIMIT_REQUESTS: '40', RATE_LIMIT_WINDOW_SECONDS: '60' } });
  const signUp = () => registerAndLogin(client(two.a));
  const admin = () => loginAdmin(client(two.a));
  const status = async (res: Promise<Response>) => (await res).status;

  // Rate limiting is per user here, so each test uses its own users.

  it('accepts on B a token issued on A', async () => {
    const s = await signUp();
    expect(await status(typed(two.b, s).api.users.me.$get())).toBe(200);
  });

  // B hears of A's writes from Redis's invalidation message: milliseconds, not the same tick.
  it('shows on B a profile changed on A within 100 ms', async () => {
    const s = await signUp();
    const onB = typed(two.b, s);
    expect((await read(await onB.api.users.me.$get())).body.name).toBe('Test User');
    expect(await status(typed(two.a, s).api.users.me.$put({ json: { name: 'Renamed on A' } }))).toBe(200);
    const seen = async (check: (b: { name: string; roles: string[]; updatedAt: string }) => boolean) => {
      const end = Date.now() + 100;
      for (;;) {
        const me = await read(await onB.api.users.me.$get());
        if (check(me.body)) return me.body;
        if (Date.now() > end) return me.body;
        await sleep(2);
      }
    };
    expect((await seen((b) => b.name === 'Renamed on A')).name).toBe('Renamed on A');
    const roles = await read(
      await typed(two.a, await admin()).api.users[':id'].roles.$put({ param: { id: s.userId }, json: { roles: ['user', 'moderator'] } }),
    );
    const after = await seen((b) => b.roles.length === 2 && b.updatedAt === roles.body.updatedAt);
    expect(after.roles).toEqual(['moderator', 'user']);
    expect(after.updatedAt).toBe(roles.body.updatedAt);
  });

  it('lists on B, within 100 ms, a post written or deleted on A (B had the first page cached)', async () => {
    const s = await signUp();
    const titles = async (app: TestApp) => {
      const res = await typed(app).api.posts.$get({ query: {} });
      if (res.status !== 200) throw new Error(`GET /posts: ${res.status}`);
      return (await res.json()).items.map((p) => p.title);
    };
    await titles(two.b); // B serves the first page from its in-process cache from now on
    await titles(two.b);
    const title = `written on A ${Math.random()}`;
    const asA = typed(two.a, s);
    const created = await asA.api.posts.$post({ json: { title, body: 'x' } });
    expect(created.status).toBe(201);
    const post = created.status === 201 ? await created.json() : undefined;
    expect(await within(100, async () => (await titles(two.b))[0] === title)).toBe(true);
    expect((await read(await typed(two.a).api.posts.$get({ query: { limit: '5' } }))).body.items[0].title).toBe(title);
    expect(await status(asA.api.posts[':id'].$delete({ param: { id: post!.id } }))).toBe(204);
    expect(await within(100, async () => !(await titles(two.b)).includes(title))).toBe(true);
  });

  const setRoles = async (by: Session, userId: string, roles: string[]) =>
    expect(await status(typed(two.a, by).api.users[':id'].roles.$put({ param: { id: userId }, json: { roles } }))).toBe(200);

  it('puts a role removed on A in force on B within 1.5 s', async () => {
    const root = await admin();
    const mod = await signUp();
    await setRoles(root, mod.userId, ['user', 'moderator']);
    const onB = typed(two.b, mod);
    expect(await status(onB.api.users.$get({ query: {} }))).toBe(200);
    await setRoles(root, mod.userId, ['user']);
    await within1500('the role removed on B', async () => (await status(onB.api.users.$get({ query: {} }))) === 403);
  });

  it('puts a role permission change on A in force on B within 1.5 s', async () => {
    const root = await admin();
    const asRoot = typed(two.a, root);
    const name = `r${Math.random().toString(36).slice(2, 8)}`;
    expect(await status(asRoot.api.roles.$post({ json: { name, permissions: [] } }))).toBe(201);
    const s = await signUp();
    await setRoles(root, s.userId, ['user', name]);
    const onB = typed(two.b, s);
    expect(await status(onB.api.admin.stats.$get())).toBe(403);
    expect(
      await status(asRoot.api.roles[':role'].permissions.$put({ param: { role: name }, json: { permissions: ['admin:stats:read'] } })),
    ).toBe(200);
    await within1500('the permission granted on B', async () => (await status(onB.api.admin.stats.$get())) === 200);
  });

  it('kills a session on B within 1.5 s of logout on A', async () => {
    const s = await signUp();
    const onB = typed(two.b, s);
    expect(await status(onB.api.users.me.$get())).toBe(200);
    expect(await status(typed(two.a).api.auth.logout.$post({ json: { refreshToken: s.refreshToken } }))).toBe(204);
    await within1500('the logout on B', async () => (await status(onB.api.users.me.$get())) === 401);
  });

  it('kills a session on B within 1.5 s of refresh-token reuse on A', async () => {
    const s = await signUp();
    const fresh = await typed(two.b).api.auth.refresh.$post({ json: { refreshToken: s.refreshToken } });
    if (fresh.status !== 200) throw new Error(`refresh: ${fresh.status}`);
    const onB = typed(two.b, await fresh.json());
    expect(await status(onB.api.users.me.$get())).toBe(200);
    const reused = await read(await typed(two.a).api.auth.refresh.$post({ json: { refreshToken: s.refreshToken } }));
    expect(reused.body.code).toBe('refresh_token_reused');
    await within1500('the reuse on B', async () => (await status(onB.api.users.me.$get())) === 401);
  });

  it('counts the rate limit across both instances', async () => {
    const s = await signUp();
    const [onA, onB] = [typed(two.a, s), typed(two.b, s)];
    const statuses: number[] = [];
    const remaining: number[] = [];
    for (let i = 0; i < 44; i++) {
      const res = await (i % 2 ? onA : onB).api.posts.$get({ query: {} });
      statuses.push(res.status);
      remaining.push(Number(res.headers.get('ratelimit-remaining')));
    }
    expect(statuses.slice(0, 40).every((x) => x === 200)).toBe(true);
    expect(statuses.slice(40)).toEqual([429, 429, 429, 429]);
    expect(remaining.slice(0, 3)).toEqual([39, 38, 37]);
    const refused = await onA.api.posts.$get({ query: {} });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    // Another user is not affected.
    const other = await login(client(two.a), 'root@example.test', 'Admin-Password-1!');
    expect(await status(typed(two.b, other).api.posts.$get({ query: {} }))).toBe(200);
  });
});
