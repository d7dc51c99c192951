// The admin console (/console) in headless Chromium: users and their roles,
// the permission matrix, the audit log's filters, the statistics charts, what
// each role gets to see, and the first run that creates the first admin.
// Every tab ends with no script error, CSP violation or request to another
// origin (test/helpers/browser.ts).
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareSetupToken } from '../../src/modules/setup/setup.service.js';
import { ADMIN } from '../helpers/app.js';
import {
  expectClean,
  landsOn,
  openTab,
  screenshot,
  startServedApp,
  storedTokens,
  submitLogin,
  useBrowserApp,
  type Tab,
} from '../helpers/browser.js';
import { login, loginAdmin, PASSWORD, registerAndLogin, type Session, userWithRoles } from '../helpers/http.js';

const PEOPLE = [
  ['Margaret Hamilton', ['moderator']],
  ['Katherine Johnson', ['user']],
  ['Alan Turing', ['user']],
  ['Barbara Liskov', ['moderator']],
  ['Edsger Dijkstra', ['user']],
] as const;

describe('the admin console in a browser', () => {
  const b = useBrowserApp();
  let admin: Session;

  beforeAll(async () => {
    // Some people, some of them moderators, and a few hours of traffic for the
    // statistics: the app's clock moves an hour ahead after each round.
    admin = await loginAdmin(b.call);
    const people: Session[] = [];
    for (const [name, roles] of PEOPLE) {
      const s = await registerAndLogin(b.call, { name, email: `${name.split(' ')[0]!.toLowerCase()}@example.test` });
      if (roles[0] !== 'user') await b.call('PUT', `/users/${s.userId}/roles`, { token: admin.accessToken, body: { roles } });
      people.push(s);
    }
    for (let hour = 0; hour < 6; hour++) {
      for (const s of people.slice(0, 1 + ((hour * 2) % people.length))) {
        const again = await login(b.call, s.email, PASSWORD);
        await b.call('GET', '/users', { token: again.accessToken });
      }
      if (hour % 2 === 1) await b.call('POST', '/auth/login', { body: { email: 'alan@example.test', password: 'not-his-password' } });
      b.clock.advance(3_600_000);
    }
    admin = await loginAdmin(b.call);
  });

  /** A tab signed in on /login as the admin (or someone else), on /console. */
  async function consoleAs(email = ADMIN.email, password = ADMIN.password): Promise<Tab> {
    const tab = await b.open('/login?next=/console');
    await submitLogin(tab.page, email, password);
    await landsOn(tab.page, '/console');
    return tab;
  }

  it('finds a user by email on the Users tab and gives them a role', async () => {
    const s = await registerAndLogin(b.call, { name: 'Ida Rhodes' });
    const tab = await consoleAs();
    const { page } = tab;
    expect(await page.getByRole('tab', { name: 'Users' }).getAttribute('aria-selected')).toBe('true');
    const users = page.getByRole('region', { name: 'Users' });
    await users.getByLabel('Search email or name').fill(s.email);
    await users.getByRole('button', { name: 'Search' }).click();
    const rows = users.locator('tbody tr');
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringContaining('Ida Rhodes')]);
    await rows.getByRole('button', { name: s.email }).click();

    const detail = page.getByRole('region', { name: `User ${s.email}` });
    const moderator = detail.getByRole('checkbox', { name: 'moderator' });
    expect(await detail.getByRole('checkbox', { name: 'user' }).isChecked()).toBe(true);
    expect(await moderator.isChecked()).toBe(false);
    await moderator.check();
    await detail.getByRole('button', { name: 'Save roles' }).click();
    await expect.poll(() => detail.getByRole('status').textContent()).toBe('Roles saved.');
    await expect
      .poll(async () => ((await rows.first().locator('td').nth(2).textContent()) ?? '').split(', ').sort())
      .toEqual(['moderator', 'user']);

    const user = await b.call('GET', `/users/${s.userId}`, { token: admin.accessToken });
    expect(user.body.roles.sort()).toEqual(['moderator', 'user']);
    expectClean(tab);
    await tab.context.close();
  });

  it('shows no tabs to a user without console permissions, and only Users to a moderator', async () => {
    const plain = await registerAndLogin(b.call);
    const tab = await consoleAs(plain.email, PASSWORD);
    await expect.poll(() => tab.page.getByRole('status').textContent()).toContain('hold none of the console’s permissions');
    expect(await tab.page.getByRole('tab').count()).toBe(0);
    expectClean(tab);
    await tab.context.close();

    const mod = await userWithRoles(b.call, admin, ['user', 'moderator']);
    const modTab = await consoleAs(mod.email, PASSWORD);
    const { page } = modTab;
    await expect.poll(() => page.getByRole('tab').allInnerTexts()).toEqual(['Users']);
    // The list, and a user's page, without the buttons the moderator may not use.
    const users = page.getByRole('region', { name: 'Users' });
    await users.getByRole('button', { name: 'margaret@example.test' }).click();
    const detail = page.getByRole('region', { name: 'User margaret@example.test' });
    const boxes = detail.getByRole('group', { name: 'Roles' }).getByRole('checkbox');
    await expect.poll(() => boxes.count()).toBeGreaterThanOrEqual(1);
    for (const el of await boxes.all()) expect(await el.isDisabled()).toBe(true);
    expect(await detail.getByRole('button', { name: 'Save roles' }).isDisabled()).toBe(true);
    for (const name of ['End all sessions', 'Reset second factors', 'Delete user']) {
      expect(await detail.getByRole('button', { name }).isDisabled(), name).toBe(true);
    }
    expectClean(modTab);
    await modTab.context.close();
  });

  it('edits the permission matrix on the Roles tab, keeps admin fixed, and creates a role', async () => {
    const tab = await consoleAs();
    const { page } = tab;
    await page.getByRole('tab', { name: 'Roles' }).click();
    const roles = page.getByRole('region', { name: 'Roles' });
    const box = (role: string, permission: string) => roles.getByRole('checkbox', { name: `${role}: ${permission}`, exact: true });
    const permissionsOf = async (role: string) =>
      (await b.call('GET', '/roles', { token: admin.accessToken })).body.items.find((r: { name: string }) => r.name === role)
        ?.permissions as string[];

    // Built-in roles are marked, each with its member count.
    const heads = roles.locator('table.matrix thead th');
    await expect.poll(() => heads.count()).toBe(5);
    for (const name of ['guest', 'user', 'moderator', 'admin']) {
      expect(await heads.filter({ hasText: new RegExp(`^${name}built-in`) }).textContent()).toMatch(
        new RegExp(`^${name}\\s*built-in\\s*\\d+ users$`),
      );
    }
    // admin holds everything and cannot be changed here.
    const adminBoxes = roles.getByRole('checkbox', { name: /^admin: / });
    await expect.poll(() => adminBoxes.count()).toBeGreaterThan(15);
    for (const el of await adminBoxes.all()) expect([await el.isChecked(), await el.isDisabled()]).toEqual([true, true]);

    // Tick, then untick, users:read for user: the API follows.
    expect(await box('user', 'users:read').isChecked()).toBe(false);
    await box('user', 'users:read').check();
    await expect.poll(() => permissionsOf('user')).toContain('users:read');
    await expect.poll(() => box('user', 'users:read').isEnabled()).toBe(true);
    await box('user', 'users:read').uncheck();
    await expect.poll(() => permissionsOf('user')).not.toContain('users:read');

    // guest (anyone at all) can only ever hold the open permissions: the others cannot be ticked.
    // (Polled: every box is disabled for a moment while the page saves a change.)
    await expect.poll(() => box('guest', 'posts:read').isEnabled()).toBe(true);
    expect(await box('guest', 'users:read').isDisabled()).toBe(true);

    // A new role, from the form, appears as a column of its own (not built-in, deletable).
    const form = roles.getByRole('form', { name: 'Create a role' });
    await form.getByLabel('Name').fill('support_agent');
    await form.getByLabel('Description').fill('Answers the support queue');
    await form.getByRole('button', { name: 'Create the role' }).click();
    await expect.poll(() => heads.count()).toBe(6);
    expect(await heads.last().textContent()).toMatch(/^support_agent\s*0 users/);
    expect(await roles.getByRole('button', { name: 'Delete role support_agent' }).isVisible()).toBe(true);
    await box('support_agent', 'users:read').check();
    await expect.poll(() => permissionsOf('support_agent')).toEqual(['users:read']);

    // A change the API refuses (the role was deleted elsewhere meanwhile) is shown, and the box goes back.
    expect((await b.call('DELETE', '/roles/support_agent', { token: admin.accessToken })).status).toBe(204);
    // click, not check: the page reloads the matrix once the API refuses, and the column is gone.
    await box('support_agent', 'posts:read').click();
    await expect.poll(() => roles.getByRole('alert').first().textContent()).toMatch(/role/i);
    await expect.poll(() => heads.count()).toBe(5);
    expectClean(tab, { http: ['PUT /roles/support_agent/permissions 404'] });
    await tab.context.close();
  });

  it('filters the audit log by action and status', async () => {
    const failed = async () =>
      (await b.call('GET', '/admin/logs?action=auth.login&status=401&limit=50', { token: admin.accessToken })).body.items as {
        id: string;
      }[];
    // Audit entries are written in batches: the ones so far first, then this failed sign-in's.
    await b.t.services.audit.idle();
    const before = (await failed()).length;
    const s = await registerAndLogin(b.call);
    await b.call('POST', '/auth/login', { body: { email: s.email, password: 'wrong-password-1' } });
    await expect.poll(async () => (await failed()).length).toBe(before + 1);
    const expected = await failed();

    const tab = await consoleAs();
    const { page } = tab;
    await page.getByRole('tab', { name: 'Audit log' }).click();
    const audit = page.getByRole('region', { name: 'Audit log' });
    const rows = audit.locator('tbody tr');
    // Unfiltered, other entries are there too (the admin's own sign-ins among them).
    await expect.poll(() => rows.count()).toBeGreaterThan(expected.length);
    const cells = (col: number) => audit.locator(`tbody tr td:nth-child(${col})`).allInnerTexts();
    expect(new Set(await cells(2)).size).toBeGreaterThan(1);

    const filter = audit.getByRole('form', { name: 'Filter the audit log' });
    await filter.getByLabel('Action').fill('auth.login');
    await filter.getByLabel('Status').fill('401');
    await filter.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => rows.count()).toBe(expected.length);
    expect(new Set(await cells(2))).toEqual(new Set(['auth.login']));
    expect(new Set(await cells(3))).toEqual(new Set(['401']));
    expect(await audit.locator('tbody tr td:nth-child(1)').first().textContent()).not.toBe('');
    expectClean(tab);
    await tab.context.close();
  });

  it('draws the Statistics charts from the counters', async () => {
    const tab = await consoleAs();
    const { page } = tab;
    await page.getByRole('tab', { name: 'Statistics' }).click();
    const stats = page.getByRole('region', { name: 'Statistics' });
    await stats.locator('figure').first().waitFor();
    const charts = await stats.locator('figure[data-chart]').evaluateAll((figures) =>
      figures.map((f) => ({
        title: f.getAttribute('data-chart'),
        caption: f.querySelector('figcaption')?.textContent,
        svg: f.querySelector('svg')?.getAttribute('aria-label'),
        bars: [...f.querySelectorAll('svg rect.bar')].map((r) => Number(r.getAttribute('data-value'))),
      })),
    );
    expect(charts.map((c) => c.title)).toEqual([
      'Sign-ins in the last 24 hours',
      'Access decisions in the last 24 hours',
      'Allowed and denied per permission',
      'Users by role',
    ]);
    for (const c of charts) {
      expect([c.caption, c.svg]).toEqual([c.title, c.title]);
      expect(
        c.bars.some((v) => v > 0),
        `${c.title} has a bar`,
      ).toBe(true);
    }
    // The timelines: 24 hours of 2 and 3 series, per hour; every sign-in of this app was in the last 7 hours.
    expect(charts[0]!.bars).toHaveLength(48);
    expect(charts[1]!.bars).toHaveLength(72);
    const stat = (await b.call('GET', '/admin/stats', { token: admin.accessToken })).body;
    const sum = (values: number[], series: number, of: number) => values.filter((_, i) => i % of === series).reduce((a, v) => a + v, 0);
    expect([sum(charts[0]!.bars, 0, 2), sum(charts[0]!.bars, 1, 2)]).toEqual([stat.auth.loginSucceeded, stat.auth.loginFailed]);
    const hoursWithSignIns = charts[0]!.bars.filter((v, i) => i % 2 === 0 && v > 0).length;
    expect(hoursWithSignIns).toBeGreaterThanOrEqual(6);
    // Users by role: the same numbers as the API's.
    const byRole = Object.keys(stat.users.byRole).sort();
    expect(charts[3]!.bars).toEqual(byRole.map((r) => stat.users.byRole[r]));
    // The bars are drawn in proportion, not just present.
    const widths = await stats
      .locator('figure[data-chart="Users by role"] rect.bar')
      .evaluateAll((rects) => rects.map((r) => r.getBoundingClientRect().width));
    expect(Math.max(...widths)).toBeGreaterThan(100);
    expectClean(tab);
    await tab.context.close();
  });

  it('makes the console screenshot (docs/screenshots/console.png)', async () => {
    const tab = await consoleAs();
    await tab.page.getByRole('tab', { name: 'Statistics' }).click();
    await tab.page.locator('figure[data-chart="Users by role"] rect.bar').first().waitFor();
    await screenshot(tab.page, 'console');
    expectClean(tab);
    await tab.context.close();
  });

  describe('on a first run, with no admin yet', () => {
    it('shows the first-admin form on /console, and creating the admin opens the console signed in', async () => {
      const fresh = await startServedApp({ overrides: { BOOTSTRAP_ADMIN_EMAIL: '', BOOTSTRAP_ADMIN_PASSWORD: '' } });
      try {
        expect(fresh.t.deps.config.bootstrapAdmin).toBeUndefined();
        const path = await prepareSetupToken(fresh.t.deps);
        const token = readFileSync(path!, 'utf8').trim();

        const tab = await openTab(b.browser, fresh);
        const { page } = tab;
        await page.goto('/console');
        const form = page.getByRole('form', { name: 'Create the first admin' });
        await form.getByLabel('Setup token').fill(token);
        await form.getByLabel('Name').fill('First Admin');
        await form.getByLabel('Email').fill('first@example.test');
        await form.getByLabel('Password').fill(PASSWORD);
        await form.getByRole('button', { name: 'Create the admin' }).click();
        await landsOn(page, '/console');
        await expect
          .poll(() => page.getByRole('tab').allInnerTexts())
          .toEqual(['Users', 'Roles', 'Audit log', 'Statistics', 'Clients', 'Identity providers']);
        await expect.poll(() => page.getByRole('region', { name: 'Users' }).locator('tbody').textContent()).toContain('first@example.test');
        const me = await fresh.call('GET', '/users/me', { token: (await storedTokens(page))!.accessToken });
        expect(me.body).toMatchObject({ email: 'first@example.test', roles: ['admin'], emailVerified: true });
        expect(existsSync(path!)).toBe(false);

        // Signed out (no tokens, no browser session), /console no longer offers the form: setup is closed.
        await page.evaluate(() => sessionStorage.clear());
        await tab.context.clearCookies();
        await page.reload();
        await page.getByRole('link', { name: 'Sign in to the console' }).waitFor();
        expect(await form.count()).toBe(0);
        // The page learns whether setup is open from the server's HTML, no error in the console; its only
        // failed request, on each signed-out visit, asks for the tokens of a browser session there is none of.
        expectClean(tab, { http: ['POST /session/tokens 401', 'POST /session/tokens 401'] });
        await tab.context.close();
        expect((await login(fresh.call, 'first@example.test', PASSWORD)).userId).toBe(me.body.id);
      } finally {
        await fresh.stop();
      }
    });
  });
});
