// The hosted account pages in headless Chromium, as a user meets them:
// registration and the confirmation mail, a forgotten password, TOTP and
// passkeys on /account and at sign-in, visible errors, the keyboard, narrow
// screens. Every tab ends with no script error, CSP violation or request to
// another origin (test/helpers/browser.ts).
import { describe, expect, it } from 'vitest';
import { ADMIN } from '../helpers/app.js';
import {
  claimsOf,
  expectClean,
  landsOn,
  screenshot,
  sidewaysScroll,
  signIn,
  storedTokens,
  submitLogin,
  useBrowserApp,
} from '../helpers/browser.js';
import { login, PASSWORD, registerAndLogin, uniqueEmail, type Call, type Session } from '../helpers/http.js';
import type { Received } from '../helpers/smtp.js';
import { rfc6238 } from '../helpers/totp.js';
import { SoftAuthenticator } from '../helpers/webauthn.js';

const NEW_PASSWORD = 'another-Long-passphrase-77';

/** The mailed link to `path` (PUBLIC_URL + path + #token=...). */
function linkIn(mails: Received[], origin: string, path: string): string {
  for (const m of mails) {
    const link = new RegExp(`${origin}${path}#token=[A-Za-z0-9_-]+`).exec(m.text)?.[0];
    if (link) return link;
  }
  throw new Error(`no ${origin}${path}#token= link in: ${mails.map((m) => m.text).join('\n---\n')}`);
}

/** A passkey added through the API (a software authenticator on the pages' origin), so the browser does not hold it. */
async function passkeyThroughApi(call: Call, origin: string, s: Session): Promise<void> {
  const options = await call('POST', '/users/me/passkeys/options', { token: s.accessToken, body: { currentPassword: PASSWORD } });
  expect(options.status, options.text).toBe(200);
  const response = new SoftAuthenticator({ origin }).register(options.body);
  const added = await call('POST', '/users/me/passkeys', { token: s.accessToken, body: { name: 'Old key', response } });
  expect(added.status, added.text).toBe(201);
}

describe('the account pages in a browser', () => {
  const b = useBrowserApp();

  it('registers on /register, and the mailed link confirms the address', async () => {
    const email = uniqueEmail('reg');
    const tab = await b.open('/register');
    const { page } = tab;
    await expect.poll(() => page.title()).toBe('Create an account · auth-system');
    await page.getByLabel('Name').fill('Grace Hopper');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create the account' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain(`The account for ${email} is ready`);

    const link = linkIn(await b.smtp.waitFor(email), b.origin, '/verify-email');
    await page.goto(link);
    await expect.poll(() => page.getByRole('status').textContent()).toContain(`${email} is confirmed`);

    const s = await login(b.call, email, PASSWORD);
    const me = await b.call('GET', '/users/me', { token: s.accessToken });
    expect(me.body).toMatchObject({ email, name: 'Grace Hopper', emailVerified: true });
    expectClean(tab);
    await tab.context.close();
  });

  it('resets a forgotten password from the mailed link, removing the passkeys when asked, and the new password alone signs in', async () => {
    const s = await registerAndLogin(b.call);
    await passkeyThroughApi(b.call, b.origin, s);
    const tab = await b.open('/forgot-password');
    const { page } = tab;
    await page.getByLabel('Email').fill(s.email);
    await page.getByRole('button', { name: 'Mail me a link' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toBeTruthy();

    // The registration's confirmation and the passkey's notice come too: the reset link is in the third.
    const mails = await b.smtp.waitFor(s.email, 3);
    await page.goto(linkIn(mails, b.origin, '/reset-password'));
    await page.getByRole('textbox', { name: 'New password' }).fill(NEW_PASSWORD);
    await page.getByRole('checkbox', { name: 'Also remove my passkeys' }).check();
    await page.getByRole('button', { name: 'Set the password' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Your password is changed, your passkeys are removed');

    await page.getByRole('status').getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL('/login');
    // No second factor is left: no second step.
    await submitLogin(page, s.email, NEW_PASSWORD);
    await landsOn(page, '/account');
    await expect.poll(() => page.locator('.who').textContent()).toContain(s.email);
    await expect.poll(() => page.getByRole('region', { name: 'Passkeys' }).textContent()).toContain('No passkeys yet.');
    // The old password no longer does.
    expect((await b.call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD } })).status).toBe(401);
    expectClean(tab);
    await tab.context.close();
  });

  it('sets up TOTP on /account from the QR code page, shows 10 recovery codes, and then sign-in asks for a code', async () => {
    const s = await registerAndLogin(b.call);
    const tab = await b.open('/login');
    const { page } = tab;
    await signIn(page, s.email, PASSWORD);

    const totp = page.getByRole('region', { name: 'Authenticator app (TOTP)' });
    await totp.getByLabel('Current password').fill(PASSWORD);
    await totp.getByRole('button', { name: 'Set up' }).click();
    const secret = (await totp.locator('code.secret').textContent())!.trim();
    expect(secret).toMatch(/^[A-Z2-7]{16,}=*$/);
    // The QR code is drawn here, as SVG squares: a white square with a black path of many modules.
    const qr = totp.getByRole('img', { name: 'QR code for your authenticator app' });
    expect(await qr.evaluate((svg) => svg.tagName.toLowerCase())).toBe('svg');
    const box = (await qr.boundingBox())!;
    expect(box.width).toBeGreaterThanOrEqual(150);
    const modules = await qr.locator('path').evaluate((p) => (p.getAttribute('d') ?? '').split('z').length - 1);
    expect(modules).toBeGreaterThan(200);

    b.clock.nextStep();
    await totp.getByLabel('Code from the app').fill(rfc6238(secret, b.clock.now()));
    // Ticked unless the user says otherwise: the sessions signed in with the password alone end.
    expect(await totp.getByLabel('Sign out my other sessions').isChecked()).toBe(true);
    await totp.getByRole('button', { name: 'Turn on' }).click();
    const codes = totp.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem');
    await expect.poll(() => codes.count()).toBe(10);
    expect(new Set(await codes.allTextContents()).size).toBe(10);
    await expect.poll(() => totp.textContent()).toContain('On.');
    expect((await b.call('GET', '/users/me', { token: s.accessToken })).status).toBe(401);

    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL('/login');
    expect(await storedTokens(page)).toBeNull();
    await submitLogin(page, s.email, PASSWORD);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Second step');
    b.clock.nextStep();
    await page.getByLabel('Code from your authenticator app, or a recovery code').fill(rfc6238(secret, b.clock.now()));
    await page.getByRole('button', { name: 'Continue' }).click();
    await landsOn(page, '/account');
    expect(claimsOf((await storedTokens(page))!.accessToken).amr).toEqual(['pwd', 'otp']);
    // The password step answers 401 mfa_required: the page takes it as the next step, not an error.
    expectClean(tab, { http: ['POST /auth/login 401'] });
    await tab.context.close();
  });

  it('adds a passkey on /account; then it is the second step after the password, and "Sign in with a passkey" needs nothing else', async () => {
    const s = await registerAndLogin(b.call);
    const tab = await b.open('/login');
    const { page } = tab;
    await tab.authenticator();
    await signIn(page, s.email, PASSWORD);

    const passkeys = page.getByRole('region', { name: 'Passkeys' });
    await expect.poll(() => passkeys.textContent()).toContain('No passkeys yet.');
    const adding = passkeys.getByRole('form', { name: 'Add a passkey' });
    await adding.getByLabel('Name for the new passkey').fill('Work laptop');
    // Adding a way to sign in asks for the password first: a wrong one adds nothing.
    await adding.getByLabel('Current password').fill('not-the-password');
    await adding.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => adding.getByRole('alert').textContent()).toContain('The current password is wrong');
    await adding.getByLabel('Current password').fill(PASSWORD);
    await adding.getByRole('button', { name: 'Add a passkey' }).click();
    const listed = passkeys.getByRole('list', { name: 'Your passkeys' }).getByRole('listitem');
    await expect.poll(() => listed.allTextContents()).toEqual([expect.stringContaining('Work laptop')]);
    const me = await b.call('GET', '/users/me', { token: s.accessToken });
    expect(me.body.mfa).toEqual({ totp: false, passkeys: 1 });

    // The password, then the passkey as the second step.
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL('/login');
    await submitLogin(page, s.email, PASSWORD);
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await landsOn(page, '/account');
    expect(claimsOf((await storedTokens(page))!.accessToken).amr).toEqual(['pwd', 'hwk']);

    // The passkey alone.
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL('/login');
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await landsOn(page, '/account');
    const tokens = (await storedTokens(page))!;
    expect(claimsOf(tokens.accessToken).amr).toEqual(['hwk']);
    const again = await b.call('GET', '/users/me', { token: tokens.accessToken });
    expect([again.status, again.body.email]).toEqual([200, s.email]);

    // And it can be removed again, with the password.
    await expect.poll(() => listed.allTextContents()).toEqual([expect.stringMatching(/Work laptop.*last used (?!—)/)]);
    await passkeys.getByRole('button', { name: 'Remove Work laptop' }).click();
    const removing = passkeys.getByRole('form', { name: 'Confirm: remove Work laptop' });
    await removing.getByLabel('Current password').fill(PASSWORD);
    await removing.getByRole('button', { name: 'Remove the passkey' }).click();
    await expect.poll(() => passkeys.textContent()).toContain('No passkeys yet.');
    expect((await b.call('GET', '/users/me', { token: tokens.accessToken })).body.mfa.passkeys).toBe(0);
    expectClean(tab, { http: ['POST /auth/login 401', 'POST /users/me/passkeys/options 403'] });
    await tab.context.close();
  });

  it('changes the password on /account and, when asked, removes the passkeys too', async () => {
    const s = await registerAndLogin(b.call);
    await passkeyThroughApi(b.call, b.origin, s);
    const tab = await b.open('/login');
    const { page } = tab;
    // Signed in already (the passkey is not in this browser): the tokens are in this tab's storage.
    await page.evaluate((t) => sessionStorage.setItem('auth-system.tokens', JSON.stringify(t)), {
      accessToken: s.accessToken,
      refreshToken: s.refreshToken,
    });
    await page.goto('/account');
    const passkeys = page.getByRole('region', { name: 'Passkeys' });
    await expect.poll(() => passkeys.getByRole('listitem').allTextContents()).toEqual([expect.stringContaining('Old key')]);
    const password = page.getByRole('region', { name: 'Password' });
    await password.getByLabel('Current password').fill(PASSWORD);
    await password.getByLabel('New password').fill(NEW_PASSWORD);
    await password.getByRole('checkbox', { name: 'Also remove my passkeys' }).check();
    await password.getByRole('button', { name: 'Change the password' }).click();
    await expect.poll(() => password.getByRole('status').textContent()).toContain('your passkeys are removed');
    await expect.poll(() => passkeys.textContent()).toContain('No passkeys yet.');
    const me = await b.call('GET', '/users/me', { token: s.accessToken });
    expect(me.body.mfa).toEqual({ totp: false, passkeys: 0 });
    expectClean(tab);
    await tab.context.close();
  });

  it('shows what went wrong: the problem on a wrong password, the field error next to a too-short password', async () => {
    const s = await registerAndLogin(b.call);
    const tab = await b.open('/login');
    const { page } = tab;
    await submitLogin(page, s.email, 'not-the-password');
    const alert = page.getByRole('form', { name: 'Sign in with your password' }).getByRole('alert');
    await expect.poll(() => alert.textContent()).toBe('Invalid email or password');
    expect(page.url()).toBe(`${b.origin}/login`);

    await page.goto('/register');
    const email = uniqueEmail('short');
    await page.getByLabel('Name').fill('Short Password');
    await page.getByLabel('Email').fill(email);
    const password = page.getByLabel('Password');
    await password.fill('short');
    await page.getByRole('button', { name: 'Create the account' }).click();
    await expect.poll(() => password.getAttribute('aria-invalid')).toBe('true');
    // Next to the field: its own note, which the field points at, in place of the hint.
    // (By attribute: ids from useId, like :r2:-note, are not CSS identifiers.)
    const note = page.locator(`[id="${await password.getAttribute('aria-describedby')}"]`);
    expect(await note.getAttribute('class')).toBe('field-error');
    const message = (await note.textContent())!;
    expect(message).toMatch(/8/);
    expect(await password.evaluate((el, n) => el.parentElement!.contains(n), await note.elementHandle())).toBe(true);
    // What was typed stays, so the user only fixes the password.
    expect(await page.getByLabel('Email').inputValue()).toBe(email);
    expect(await page.getByLabel('Name').inputValue()).toBe('Short Password');
    expect((await b.call('POST', '/auth/login', { body: { email, password: 'short' } })).status).toBe(401);
    expectClean(tab, { http: ['POST /auth/login 401', 'POST /auth/register 400'] });
    await tab.context.close();
  });

  it('signs in with the keyboard alone, and no page scrolls sideways on a 375 px wide screen', async () => {
    const s = await registerAndLogin(b.call, { name: 'Keyboard User' });
    const tab = await b.open('/login', { viewport: { width: 375, height: 800 } });
    const { page } = tab;
    await page.getByLabel('Email').waitFor();
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        if (!el || el === document.body) return 'body';
        const label = el.id ? document.querySelector(`label[for="${el.id}"]`)?.textContent : null;
        return `${el.tagName.toLowerCase()}:${label ?? el.textContent?.trim()}`;
      });
    // The email field has the focus on arrival; then the form goes in reading order.
    await expect.poll(focused).toBe('input:Email');
    await page.keyboard.type(s.email);
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('input:Password');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('button:Sign in');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Enter');
    await landsOn(page, '/account');
    await expect.poll(() => page.locator('.who').textContent()).toContain('Keyboard User');

    expect.soft(await sidewaysScroll(page), page.url()).toBeNull();
    await page.goto('/login');
    await page.getByLabel('Email').waitFor();
    expect.soft(await sidewaysScroll(page), page.url()).toBeNull();
    // The console of a user without its permissions, and of the admin on each tab.
    await page.goto('/console');
    await page.getByRole('status').waitFor();
    expect.soft(await sidewaysScroll(page), page.url()).toBeNull();
    const admin = await login(b.call, ADMIN.email, ADMIN.password);
    await page.evaluate((t) => sessionStorage.setItem('auth-system.tokens', JSON.stringify(t)), {
      accessToken: admin.accessToken,
      refreshToken: admin.refreshToken,
    });
    await page.goto('/console');
    for (const name of ['Users', 'Roles', 'Audit log', 'Statistics']) {
      await page.getByRole('tab', { name }).click();
      await page
        .getByRole('tabpanel')
        .getByRole('region', { name: name === 'Audit log' ? 'Audit log' : name })
        .waitFor();
      await page.waitForLoadState('networkidle');
      expect.soft(await sidewaysScroll(page), `/console, tab ${name}`).toBeNull();
    }
    expectClean(tab);
    await tab.context.close();
  });

  it('makes the /account screenshot (docs/screenshots/account.png)', async () => {
    const email = 'ada.lovelace@example.test';
    await b.call('POST', '/auth/register', { body: { email, password: PASSWORD, name: 'Ada Lovelace' } });
    // A second session, from a phone, over the socket (so it has an address and a user agent).
    const phone = await fetch(`${b.origin}/auth/login`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent':
          'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
      },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    expect(phone.status).toBe(200);
    const s = { email };
    const link = linkIn(await b.smtp.waitFor(s.email), b.origin, '/verify-email');
    const tab = await b.open(link);
    await tab.page.getByRole('status').waitFor();
    await tab.authenticator();
    await signIn(tab.page, s.email, PASSWORD);
    const passkeys = tab.page.getByRole('region', { name: 'Passkeys' });
    await passkeys.getByLabel('Name for the new passkey').fill('Phone');
    await passkeys.getByLabel('Current password').fill(PASSWORD);
    await passkeys.getByRole('button', { name: 'Add a passkey' }).click();
    await passkeys.getByRole('listitem').waitFor();
    await tab.page.reload();
    await tab.page.getByRole('region', { name: 'Sessions' }).getByRole('row').nth(2).waitFor();
    await tab.page.getByRole('region', { name: 'Passkeys' }).getByRole('listitem').waitFor();
    await screenshot(tab.page, 'account');
    expectClean(tab);
    await tab.context.close();
  });
});
