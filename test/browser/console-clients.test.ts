// The console's Clients section in headless Chromium: an admin registers a
// client and sees its secret once, edits it, rotates the secret, reads its
// sign-ins per hour and deletes it; a holder of clients:read only reads.
// No script error, CSP violation or request to another origin (test/helpers/browser.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { authenticateClient, countClientSignIn } from '../../src/provider/clients.js';
import { ADMIN } from '../helpers/app.js';
import { expectClean, landsOn, sidewaysScroll, submitLogin, useBrowserApp, type Tab } from '../helpers/browser.js';
import { loginAdmin, PASSWORD, type Session, userWithRoles } from '../helpers/http.js';

describe('the Clients section of the console in a browser', () => {
  const b = useBrowserApp();
  let admin: Session;

  beforeAll(async () => {
    admin = await loginAdmin(b.call);
  });

  async function consoleAs(email: string, password: string): Promise<Tab> {
    const tab = await b.open('/login?next=/console');
    await submitLogin(tab.page, email, password);
    await landsOn(tab.page, '/console');
    return tab;
  }

  const works = (clientId: string, clientSecret: string) =>
    authenticateClient(b.t.services, { method: 'client_secret_basic', clientId, clientSecret }).then(
      () => true,
      () => false,
    );

  it('registers, edits, rotates the secret of, charts and deletes a client', async () => {
    const tab = await consoleAs(ADMIN.email, ADMIN.password);
    const { page } = tab;
    await page.getByRole('tab', { name: 'Clients' }).click();
    const section = page.getByRole('region', { name: 'Clients' });
    await section.getByText('Register a client').click();
    const form = section.getByRole('form', { name: 'New client' });
    await form.getByLabel('Client id').fill('wiki');
    await form.getByLabel('Name', { exact: true }).fill('Wiki');
    await form.getByLabel('Redirect URIs', { exact: true }).fill('https://wiki.example.com/callback\nhttp://wiki.example.com/insecure');
    await form.getByRole('button', { name: 'Register the client' }).click();
    // A URI breaking the rules is named, and nothing is registered.
    await form.getByText('redirectUris.1').waitFor();
    await form.getByLabel('Redirect URIs', { exact: true }).fill('https://wiki.example.com/callback');
    await form.getByRole('button', { name: 'Register the client' }).click();

    const shown = section.getByRole('status', { name: 'Client secret' }).locator('code.secret');
    await shown.waitFor();
    const secret = (await shown.textContent()) ?? '';
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await works('wiki', secret)).toBe(true);
    await section.getByRole('button', { name: 'I have copied it' }).first().click();
    expect(await page.content()).not.toContain(secret);

    const detail = section.getByRole('region', { name: 'Client wiki' });
    await detail.waitFor();
    // On a phone too, the section fits the screen.
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await sidewaysScroll(page)).toBeNull();
    await page.setViewportSize({ width: 1280, height: 800 });
    await detail.getByText('Edit the client').click();
    const edit = detail.getByRole('form', { name: 'Edit wiki' });
    await edit.getByLabel('Name', { exact: true }).fill('Team wiki');
    await edit.getByRole('checkbox', { name: 'roles' }).check();
    await edit.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => section.locator('tbody').textContent()).toContain('Team wiki');
    const saved = await b.call('GET', '/admin/clients/wiki', { token: admin.accessToken });
    expect(saved.body).toMatchObject({ name: 'Team wiki', scopes: ['openid', 'profile', 'email', 'roles', 'offline_access'] });

    page.once('dialog', (d) => void d.accept());
    await detail.getByRole('button', { name: 'Rotate the secret' }).click();
    const rotated = detail.getByRole('status', { name: 'Client secret' }).locator('code.secret');
    await rotated.waitFor();
    const next = (await rotated.textContent()) ?? '';
    expect(await works('wiki', next)).toBe(true);
    expect(await works('wiki', secret)).toBe(false);

    countClientSignIn(b.t.services, 'wiki');
    await page.getByRole('tab', { name: 'Users' }).click();
    await page.getByRole('tab', { name: 'Clients' }).click();
    await section.getByRole('button', { name: 'Team wiki' }).click();
    await section.locator('figure[data-chart="Sign-ins of wiki in the last 24 hours"]').waitFor();

    page.once('dialog', (d) => void d.accept());
    await section.getByRole('button', { name: 'Delete the client' }).click();
    await expect.poll(() => section.locator('tbody').textContent()).not.toContain('Team wiki');
    expect((await b.call('GET', '/admin/clients/wiki', { token: admin.accessToken })).status).toBe(404);
    // The one refusal: the insecure redirect URI.
    expectClean(tab, { http: ['POST /admin/clients 400'] });
    await tab.context.close();
  });

  it('shows a holder of clients:read the list without the forms', async () => {
    await b.call('POST', '/admin/clients', {
      token: admin.accessToken,
      body: { id: 'reports', name: 'Reports', redirectUris: ['https://reports.example.com/cb'] },
    });
    const role = await b.call('POST', '/roles', {
      token: admin.accessToken,
      body: { name: 'client_viewer', permissions: ['clients:read'] },
    });
    expect(role.status).toBe(201);
    const viewer = await userWithRoles(b.call, admin, ['user', 'client_viewer']);
    const tab = await consoleAs(viewer.email, PASSWORD);
    const { page } = tab;
    await page.getByRole('tab', { name: 'Clients' }).click();
    const section = page.getByRole('region', { name: 'Clients' });
    await section.getByRole('button', { name: 'Reports' }).click();
    await section.getByRole('region', { name: 'Client reports' }).waitFor();
    expect(await section.getByRole('form').count()).toBe(0);
    expect(await section.getByRole('button', { name: 'Delete the client' }).count()).toBe(0);
    expectClean(tab);
    await tab.context.close();
  });
});
