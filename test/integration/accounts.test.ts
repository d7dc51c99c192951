// Accounts (docs/api.md "Accounts"): email verification, password reset and
// email change, with mail delivered over SMTP to a real server in this process,
// on both backends. The outbox's own guarantees (outages, restarts, several
// instances) are in mail-outbox.test.ts.
import { and, eq, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mailOutbox } from '../../src/db/schema.js';
import { MemoryStore } from '../../src/store/memory.js';
import { ADMIN } from '../helpers/app.js';
import { login, read, registerAndLogin, typed, uniqueEmail, PASSWORD, type Session } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { TestSmtp, tokenFrom } from '../helpers/smtp.js';
import { useTestApp } from '../helpers/use-app.js';

const NEW_PASSWORD = 'another-Long-passphrase-77';
const FAST_MAIL = { pollMs: 50, baseBackoffMs: 50, maxBackoffMs: 200 };
const from = (ip: string) => ({ env: { incoming: { socket: { remoteAddress: ip } } } });

describe.each(BACKENDS)('accounts on %s', (backend) => {
  const smtp = new TestSmtp();
  let skewMs = 0;
  beforeAll(() => smtp.start());
  afterAll(() => smtp.stop());
  const app = useTestApp(backend, () => ({
    overrides: { SMTP_URL: smtp.url, MAIL_FROM: 'Example Auth <auth@example.test>', PUBLIC_URL: 'https://auth.example.test' },
    clock: () => Date.now() + skewMs,
    // Mail limits count in the store: its windows run on the same clock.
    store: new MemoryStore(() => Date.now() + skewMs),
    app: { mail: FAST_MAIL },
  }));
  const { call } = app;
  // Requests a well-formed client sends go through the typed client (over app.request()), so a
  // change to these routes breaks this file at compile time; requests from a given address
  // (the connection's env) and malformed bodies stay raw.
  const t = (s?: { accessToken: string }) => typed(app.t, s);

  /** Every mail asked for so far is queued (some are, after the answer), and the sender has nothing left to send. */
  const settled = async () => {
    await app.t.services.background.idle();
    await app.t.services.outbox.idle();
  };

  /** Every mail asked for so far has been handed to the SMTP server: what this address got. */
  const delivered = async (email: string) => {
    await settled();
    const pending = await app.database.db
      .select({ id: mailOutbox.id })
      .from(mailOutbox)
      .where(and(eq(mailOutbox.toAddress, email), isNull(mailOutbox.sentAt)));
    expect(pending).toHaveLength(0);
    return smtp.to(email);
  };

  const register = async (email = uniqueEmail()) => {
    const res = await read(await t().api.auth.register.$post({ json: { email, password: PASSWORD, name: 'Ann' } }));
    expect(res.status, res.text).toBe(201);
    return res.body.user as { id: string; email: string; emailVerified: boolean };
  };

  describe('email verification', () => {
    it('mails a working link on register; the link verifies the address once', async () => {
      const user = await register();
      expect(user.emailVerified).toBe(false);
      const [mail] = await smtp.waitFor(user.email);
      expect(mail!.parsed.from?.value[0]).toMatchObject({ name: 'Example Auth', address: 'auth@example.test' });
      expect(mail!.subject).toMatch(/confirm/i);
      expect(mail!.text).toMatch(/https:\/\/auth\.example\.test\/verify-email#token=[A-Za-z0-9_-]{43}/);
      expect(mail!.html).toContain('https://auth.example.test/verify-email#token=');
      // Names the service, where the request came from and when, and what to do if it was not you.
      expect(mail!.text).toContain('auth-system (auth.example.test)');
      expect(mail!.text).toMatch(/from the address \S+ at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
      expect(mail!.text).toMatch(/if it was not you/i);

      const token = tokenFrom(mail!);
      const ok = await read(await t().api.auth['verify-email'].$post({ json: { token } }));
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.user).toMatchObject({ id: user.id, email: user.email, emailVerified: true });
      const s = await login(call, user.email, PASSWORD);
      expect((await read(await t(s).api.users.me.$get())).body.emailVerified).toBe(true);

      const again = await read(await t().api.auth['verify-email'].$post({ json: { token } }));
      expect(again.status).toBe(400);
      expect(again.body.code).toBe('invalid_email_token');
    });

    it('refuses unknown, malformed and expired tokens with 400 invalid_email_token or validation_failed', async () => {
      expect((await read(await t().api.auth['verify-email'].$post({ json: { token: 'x'.repeat(43) } }))).body.code).toBe(
        'invalid_email_token',
      );
      expect((await call('POST', '/auth/verify-email', { body: {} })).body.code).toBe('validation_failed');
      expect((await call('POST', '/auth/verify-email', { body: { token: 'a', extra: 1 } })).body.code).toBe('validation_failed');
      const user = await register();
      const token = tokenFrom((await smtp.waitFor(user.email))[0]!);
      skewMs = 86_400_000 + 1000;
      try {
        const res = await read(await t().api.auth['verify-email'].$post({ json: { token } }));
        expect(res.status).toBe(400);
        expect(res.body.code).toBe('invalid_email_token');
      } finally {
        skewMs = 0;
      }
    });

    it('resend answers 202 with the same body for unknown, unverified and verified addresses, and mails only the unverified', async () => {
      const unverified = await register();
      await smtp.waitFor(unverified.email);
      const verified = await register();
      await read(await t().api.auth['verify-email'].$post({ json: { token: tokenFrom((await smtp.waitFor(verified.email))[0]!) } }));
      const ghost = uniqueEmail('ghost');
      const answers = [];
      for (const email of [unverified.email, verified.email, ghost]) {
        const res = await read(await t().api.auth['verify-email'].resend.$post({ json: { email } }));
        answers.push({ status: res.status, body: res.text, type: res.headers.get('content-type') });
      }
      expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
      expect(answers[0]!.status).toBe(202);
      await settled();
      const mails = smtp.to(unverified.email);
      expect(mails).toHaveLength(2);
      expect(smtp.to(verified.email)).toHaveLength(1);
      expect(smtp.to(ghost)).toHaveLength(0);
      // The newer link replaces the older one.
      const [first, second] = mails.map((m) => tokenFrom(m));
      expect((await read(await t().api.auth['verify-email'].$post({ json: { token: first! } }))).body.code).toBe('invalid_email_token');
      expect((await read(await t().api.auth['verify-email'].$post({ json: { token: second! } }))).status).toBe(200);
    });

    it('sends at most MAIL_PER_ADDRESS_PER_HOUR mails of one kind to one address, answering 202 all the same', async () => {
      const user = await register(); // the register mail counts: 1
      for (let i = 0; i < 4; i++) {
        expect((await read(await t().api.auth['verify-email'].resend.$post({ json: { email: user.email } }))).status).toBe(202);
      }
      await settled();
      expect(smtp.to(user.email)).toHaveLength(3);
      // Another kind has its own count.
      expect((await read(await t().api.auth.password.forgot.$post({ json: { email: user.email } }))).status).toBe(202);
      await smtp.waitFor(user.email, 4);
    });
    it('keeps the per-address limit for the whole hour: a minute later it still holds, and it is logged once', async () => {
      const user = await register(); // 1
      for (let i = 0; i < 2; i++) await read(await t().api.auth['verify-email'].resend.$post({ json: { email: user.email } })); // 2, 3
      expect(await delivered(user.email)).toHaveLength(3);
      const logged = () => app.t.logs.lines.filter((l) => l.includes('mail not sent')).length;
      const before = logged();
      try {
        skewMs = 61_000;
        for (let i = 0; i < 3; i++)
          expect((await read(await t().api.auth['verify-email'].resend.$post({ json: { email: user.email } }))).status).toBe(202);
        expect(await delivered(user.email)).toHaveLength(3);
        // One line per address and window, not one per request.
        expect(logged() - before).toBe(1);
        skewMs = 3_601_000;
        await read(await t().api.auth['verify-email'].resend.$post({ json: { email: user.email } }));
        expect(await delivered(user.email)).toHaveLength(4);
      } finally {
        skewMs = 0;
      }
    });

    it('counts no mail for a registration that fails (a taken address)', async () => {
      const user = await register(); // 1
      for (let i = 0; i < 3; i++) {
        const again = await read(await t().api.auth.register.$post({ json: { email: user.email, password: PASSWORD, name: 'Eve' } }));
        expect(again.body.code).toBe('email_taken');
      }
      for (let i = 0; i < 2; i++) await read(await t().api.auth['verify-email'].resend.$post({ json: { email: user.email } }));
      expect(await delivered(user.email)).toHaveLength(3);
    });
  });

  describe('mail limits and strangers', () => {
    it('sends the owner’s reset although strangers asked for resets of the address from many clients', async () => {
      const home = '198.51.100.60';
      const email = uniqueEmail('owner');
      expect((await call('POST', '/auth/register', { body: { email, password: PASSWORD, name: 'Ann' }, ...from(home) })).status).toBe(201);
      expect((await call('POST', '/auth/login', { body: { email, password: PASSWORD }, ...from(home) })).status).toBe(200);
      // 11 strangers (IPv4 addresses, and /64s: addresses of one /64 are one client), 4 requests each.
      const strangers = Array.from({ length: 11 }, (_, i) =>
        i % 2 ? [`203.0.113.${i}`] : [`2001:db8:${i}::1`, `2001:db8:${i}::2`, `2001:db8:${i}:0:1::3`, `2001:db8:${i}::ffff`],
      );
      for (const client of strangers) {
        for (let n = 0; n < 4; n++) {
          const ip = client[n % client.length]!;
          expect((await call('POST', '/auth/password/forgot', { body: { email }, ...from(ip) })).status).toBe(202);
          // One at a time (each request's work runs after its answer).
          await app.t.services.background.idle();
        }
      }
      // No client got more than MAIL_PER_ADDRESS_PER_HOUR (3); all together at most 10 times that.
      const resets = async () => (await delivered(email)).filter((m) => /reset/i.test(m.subject));
      expect(await resets()).toHaveLength(30);
      // The owner asks from where they signed in: the mail is sent, and its link works.
      await call('POST', '/auth/password/forgot', { body: { email }, ...from(home) });
      const mine = await resets();
      expect(mine).toHaveLength(31);
      expect(mine[30]!.text).toContain(`from the address ${home} at`);
      expect(
        (await read(await t().api.auth.password.reset.$post({ json: { token: tokenFrom(mine[30]!), password: NEW_PASSWORD } }))).status,
      ).toBe(204);
    });

    it('sends the owner’s reset after one stranger spent a client’s worth of requests', async () => {
      const s = await registerAndLogin(call);
      for (let i = 0; i < 4; i++) {
        await call('POST', '/auth/password/forgot', { body: { email: s.email }, ...from('203.0.113.99') });
        await app.t.services.background.idle();
      }
      // The owner, from anywhere else: a client of its own.
      await call('POST', '/auth/password/forgot', { body: { email: s.email }, ...from('192.0.2.14') });
      const resets = (await delivered(s.email)).filter((m) => /reset/i.test(m.subject));
      expect(resets).toHaveLength(4);
      expect(resets.filter((m) => m.text.includes('from the address 192.0.2.14 at'))).toHaveLength(1);
    });
  });

  describe('password reset', () => {
    it('answers forgot-password with the same 202 body whether or not the account exists, and mails only an account', async () => {
      const s = await registerAndLogin(call);
      const ghost = uniqueEmail('ghost');
      const known = await read(await t().api.auth.password.forgot.$post({ json: { email: s.email } }));
      const unknown = await read(await t().api.auth.password.forgot.$post({ json: { email: ghost } }));
      expect(known.status).toBe(202);
      expect(unknown.status).toBe(202);
      expect(unknown.text).toBe(known.text);
      expect(unknown.headers.get('content-type')).toBe(known.headers.get('content-type'));
      const mail = (await smtp.waitFor(s.email, 2)).find((m) => /reset/i.test(m.subject))!;
      expect(mail.text).toMatch(/https:\/\/auth\.example\.test\/reset-password#token=/);
      expect(mail.text).toMatch(/if it was not you/i);
      await app.t.services.background.idle();
      expect(smtp.to(ghost)).toHaveLength(0);
    });

    it('resets with the mailed token: every session ends, the old password stops working, the token works once, no tokens are issued', async () => {
      const s = await registerAndLogin(call);
      const other = await login(call, s.email, PASSWORD);
      await read(await t().api.auth.password.forgot.$post({ json: { email: s.email } }));
      const mail = (await smtp.waitFor(s.email, 2)).find((m) => /reset/i.test(m.subject))!;
      const token = tokenFrom(mail);

      const weak = await read(await t().api.auth.password.reset.$post({ json: { token, password: 'short' } }));
      expect(weak.body.code).toBe('validation_failed');
      const common = await read(await t().api.auth.password.reset.$post({ json: { token, password: 'password123' } }));
      expect(common.body.code).toBe('validation_failed');

      const res = await read(await t().api.auth.password.reset.$post({ json: { token, password: NEW_PASSWORD } }));
      expect(res.status, res.text).toBe(204);
      expect(res.text).toBe('');
      for (const session of [s, other]) {
        expect((await read(await t(session).api.users.me.$get())).body.code).toBe('invalid_token');
        expect((await read(await t().api.auth.refresh.$post({ json: { refreshToken: session.refreshToken } }))).status).toBe(401);
      }
      expect((await read(await t().api.auth.login.$post({ json: { email: s.email, password: PASSWORD } }))).status).toBe(401);
      const fresh = await login(call, s.email, NEW_PASSWORD);
      // The mail reached the address: it counts as verified.
      expect((await read(await t(fresh).api.users.me.$get())).body.emailVerified).toBe(true);
      const again = await read(await t().api.auth.password.reset.$post({ json: { token, password: 'yet-another-passphrase-9' } }));
      expect(again.status).toBe(400);
      expect(again.body.code).toBe('invalid_email_token');
    });

    it('clears the account’s sign-in lockout from every address', async () => {
      const s = await registerAndLogin(call);
      for (const ip of ['10.7.0.1', '10.7.0.2']) {
        for (let i = 0; i < 5; i++)
          await call('POST', '/auth/login', { body: { email: s.email, password: 'wrong-password-x' }, ...from(ip) });
        const locked = await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD }, ...from(ip) });
        expect(locked.status).toBe(429);
      }
      await read(await t().api.auth.password.forgot.$post({ json: { email: s.email } }));
      const mail = (await smtp.waitFor(s.email, 2)).find((m) => /reset/i.test(m.subject))!;
      expect(
        (await read(await t().api.auth.password.reset.$post({ json: { token: tokenFrom(mail), password: NEW_PASSWORD } }))).status,
      ).toBe(204);
      for (const ip of ['10.7.0.1', '10.7.0.2']) {
        const res = await call('POST', '/auth/login', { body: { email: s.email, password: NEW_PASSWORD }, ...from(ip) });
        expect(res.status, `${ip}: ${res.text}`).toBe(200);
      }
    });

    it('refuses an expired reset token, and a link of an address the account no longer has', async () => {
      const s = await registerAndLogin(call);
      await read(await t().api.auth.password.forgot.$post({ json: { email: s.email } }));
      const token = tokenFrom((await smtp.waitFor(s.email, 2)).find((m) => /reset/i.test(m.subject))!);
      skewMs = 1800_000 + 1000;
      try {
        expect((await read(await t().api.auth.password.reset.$post({ json: { token, password: NEW_PASSWORD } }))).body.code).toBe(
          'invalid_email_token',
        );
      } finally {
        skewMs = 0;
      }
      const u = await registerAndLogin(call);
      await read(await t().api.auth.password.forgot.$post({ json: { email: u.email } }));
      const resetToken = tokenFrom((await smtp.waitFor(u.email, 2)).find((m) => /reset/i.test(m.subject))!);
      const moved = uniqueEmail('moved');
      expect((await read(await t(u).api.users.me.$put({ json: { email: moved, currentPassword: PASSWORD } }))).status).toBe(200);
      expect((await read(await t().api.auth.password.reset.$post({ json: { token: resetToken, password: NEW_PASSWORD } }))).body.code).toBe(
        'invalid_email_token',
      );
    });
  });

  describe('email change', () => {
    it('marks the new address unverified, mails it a link and tells the old address without a link', async () => {
      const s = await registerAndLogin(call);
      const oldLink = tokenFrom((await smtp.waitFor(s.email))[0]!);
      const next = uniqueEmail('next');
      const res = await read(await t(s).api.users.me.$put({ json: { email: next, currentPassword: PASSWORD } }));
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ email: next, emailVerified: false });
      const [verify] = await smtp.waitFor(next);
      const [, notice] = await smtp.waitFor(s.email, 2);
      expect(notice!.subject).toMatch(/changed/i);
      expect(notice!.text).toContain(next);
      expect(notice!.text).not.toContain('#token=');
      expect(notice!.html).not.toContain('#token=');
      // The link sent to the old address proves nothing about the new one.
      expect((await read(await t().api.auth['verify-email'].$post({ json: { token: oldLink } }))).body.code).toBe('invalid_email_token');
      const ok = await read(await t().api.auth['verify-email'].$post({ json: { token: tokenFrom(verify!) } }));
      expect(ok.body.user).toMatchObject({ email: next, emailVerified: true });
    });
    it('takes the verified mark away from a verified user who changes the address', async () => {
      const s = await registerAndLogin(call);
      expect(
        (await read(await t().api.auth['verify-email'].$post({ json: { token: tokenFrom((await smtp.waitFor(s.email))[0]!) } }))).status,
      ).toBe(200);
      expect((await read(await t(s).api.users.me.$get())).body.emailVerified).toBe(true);
      const next = uniqueEmail('next');
      const res = await read(await t(s).api.users.me.$put({ json: { email: next, currentPassword: PASSWORD } }));
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ email: next, emailVerified: false });
      expect((await read(await t(s).api.users.me.$get())).body).toMatchObject({ email: next, emailVerified: false });
    });

    it('never lets a link mailed to an earlier address verify the current one (even when no new link could be sent)', async () => {
      const s = await registerAndLogin(call);
      const b = uniqueEmail('flip');
      const moveTo = async (email: string) =>
        expect((await read(await t(s).api.users.me.$put({ json: { email, currentPassword: PASSWORD } }))).status).toBe(200);
      const confirmsTo = (email: string) => smtp.to(email).filter((m) => /confirm/i.test(m.subject));
      // Back and forth: B gets its 3 links (MAIL_PER_ADDRESS_PER_HOUR), A its register link and 2 more.
      for (let i = 0; i < 3; i++) {
        await moveTo(b);
        await moveTo(s.email);
      }
      // The 4th link to A is over the limit: none is sent, and B's last link is the user's newest.
      await smtp.waitFor(b, 3 + 3);
      expect(confirmsTo(b)).toHaveLength(3);
      const lastToB = tokenFrom(confirmsTo(b)[2]!);
      const refused = await read(await t().api.auth['verify-email'].$post({ json: { token: lastToB } }));
      expect(refused.status).toBe(400);
      expect(refused.body.code).toBe('invalid_email_token');
      expect((await read(await t(s).api.users.me.$get())).body).toMatchObject({ email: s.email, emailVerified: false });
    });
  });

  it('audits the events without tokens, and never writes a token or link to the log', async () => {
    const user = await register();
    const token = tokenFrom((await smtp.waitFor(user.email))[0]!);
    await read(await t().api.auth['verify-email'].$post({ json: { token } }));
    await read(await t().api.auth.password.forgot.$post({ json: { email: user.email } }));
    const resetToken = tokenFrom((await smtp.waitFor(user.email, 2))[1]!);
    await read(await t().api.auth.password.reset.$post({ json: { token: resetToken, password: NEW_PASSWORD } }));
    await settled();
    await app.t.services.audit.idle();
    const admin = await login(call, ADMIN.email, ADMIN.password);
    const logs = await call('GET', `/admin/logs?actorId=${user.id}&limit=100`, { token: admin.accessToken });
    const details = (logs.body.items as { action: string; detail: string | null }[]).map((e) => `${e.action} ${e.detail}`);
    expect(details).toContain('auth.password.reset password_reset');
    expect(details).toContain('auth.verify_email email_verified');
    const all = await call('GET', '/admin/logs?limit=100', { token: admin.accessToken });
    expect(all.text).toContain('email_verified');
    expect(all.text).toContain('password_reset_requested');
    for (const secret of [token, resetToken, NEW_PASSWORD]) {
      expect(all.text).not.toContain(secret);
      expect(app.t.logs.text).not.toContain(secret);
    }
    // Sent mail leaves no link behind in the outbox.
    const rows = await app.database.db.select().from(mailOutbox).where(eq(mailOutbox.toAddress, user.email));
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.sentAt).not.toBeNull();
      expect(r.textBody).toBeNull();
      expect(r.htmlBody).toBeNull();
    }
  });
});

describe('EMAIL_VERIFICATION=required', () => {
  const smtp = new TestSmtp();
  beforeAll(() => smtp.start());
  afterAll(() => smtp.stop());
  const app = useTestApp('pglite', () => ({ overrides: { SMTP_URL: smtp.url, EMAIL_VERIFICATION: 'required' }, app: { mail: FAST_MAIL } }));
  const t = (s?: { accessToken: string }) => typed(app.t, s);

  it('refuses a correct login of an unverified user with 403 email_not_verified, and signs them in once verified', async () => {
    const email = uniqueEmail();
    await read(await t().api.auth.register.$post({ json: { email, password: PASSWORD, name: 'Ann' } }));
    const refused = await read(await t().api.auth.login.$post({ json: { email, password: PASSWORD } }));
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('email_not_verified');
    // A wrong password still says only that.
    expect((await read(await t().api.auth.login.$post({ json: { email, password: 'wrong-password-x' } }))).body.code).toBe(
      'invalid_credentials',
    );
    const [mail] = await smtp.waitFor(email);
    expect((await read(await t().api.auth['verify-email'].$post({ json: { token: tokenFrom(mail!) } }))).status).toBe(200);
    expect((await read(await t().api.auth.login.$post({ json: { email, password: PASSWORD } }))).status).toBe(200);
  });

  it('counts the bootstrap admin as verified', async () => {
    expect((await read(await t().api.auth.login.$post({ json: { email: ADMIN.email, password: ADMIN.password } }))).status).toBe(200);
  });
});

describe.each(BACKENDS)('registration with EMAIL_VERIFICATION=required on %s', (backend) => {
  const smtp = new TestSmtp();
  beforeAll(() => smtp.start());
  afterAll(() => smtp.stop());
  const app = useTestApp(backend, () => ({
    overrides: { SMTP_URL: smtp.url, EMAIL_VERIFICATION: 'required', PUBLIC_URL: 'https://auth.example.test' },
    app: { mail: FAST_MAIL },
  }));
  const { call } = app;
  const t = (s?: { accessToken: string }) => typed(app.t, s);

  it('answers a taken address as a new one (201, same shape, nothing stored) and mails its owner a notice, within the mail limit', async () => {
    const email = uniqueEmail('taken');
    const first = await read(await t().api.auth.register.$post({ json: { email, password: PASSWORD, name: 'Ann' } }));
    expect(first.status).toBe(201);
    const taken = await read(await t().api.auth.register.$post({ json: { email, password: NEW_PASSWORD, name: 'Eve' } }));
    expect(taken.status, taken.text).toBe(201);
    expect(taken.headers.get('content-type')).toBe(first.headers.get('content-type'));
    const [a, b] = [first.body.user, taken.body.user];
    expect(Object.keys(b)).toEqual(Object.keys(a));
    expect(b).toMatchObject({ email, name: 'Eve', emailVerified: false, roles: ['user'], mfa: a.mfa });
    expect(b.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.id).not.toBe(a.id);
    expect(Math.abs(Date.parse(b.createdAt) - Date.now())).toBeLessThan(60_000);
    // The owner is told; the notice has no token, and points at the forgot-password page.
    const notice = (await smtp.waitFor(email, 2)).find((m) => /tried to register/i.test(m.subject))!;
    expect(notice.text).toContain('https://auth.example.test/forgot-password');
    expect(notice.text + notice.html).not.toContain('#token=');
    expect(notice.text).toMatch(/from the address \S+ at/);
    // Nothing was stored: the new password does not sign in, the account is the owner's, the returned id is nobody.
    expect((await read(await t().api.auth.login.$post({ json: { email, password: NEW_PASSWORD } }))).body.code).toBe('invalid_credentials');
    const verify = (await smtp.waitFor(email)).find((m) => /confirm/i.test(m.subject))!;
    expect((await read(await t().api.auth['verify-email'].$post({ json: { token: tokenFrom(verify) } }))).body.user).toMatchObject({
      id: a.id,
      name: 'Ann',
    });
    const admin = await login(call, ADMIN.email, ADMIN.password);
    expect((await read(await t(admin).api.users[':id'].$get({ param: { id: b.id } }))).status).toBe(404);
    // Notices count against the per-address mail limit (3 an hour from one client).
    for (let i = 0; i < 3; i++) {
      expect((await read(await t().api.auth.register.$post({ json: { email, password: NEW_PASSWORD, name: 'Eve' } }))).status).toBe(201);
    }
    await app.t.services.background.idle();
    await app.t.services.outbox.idle();
    const unsent = await app.database.db
      .select({ id: mailOutbox.id })
      .from(mailOutbox)
      .where(and(eq(mailOutbox.toAddress, email), isNull(mailOutbox.sentAt)));
    expect(unsent).toHaveLength(0);
    expect(smtp.to(email).filter((m) => /tried to register/i.test(m.subject))).toHaveLength(3);
  });
});

describe('EMAIL_VERIFICATION=off', () => {
  const smtp = new TestSmtp();
  beforeAll(() => smtp.start());
  afterAll(() => smtp.stop());
  const app = useTestApp('pglite', () => ({ overrides: { SMTP_URL: smtp.url, EMAIL_VERIFICATION: 'off' }, app: { mail: FAST_MAIL } }));

  it('sends no verification mail on register or resend, and still mails password resets', async () => {
    const s: Session = await registerAndLogin(app.call);
    expect((await typed(app.t).api.auth['verify-email'].resend.$post({ json: { email: s.email } })).status).toBe(202);
    await typed(app.t).api.auth.password.forgot.$post({ json: { email: s.email } });
    await app.t.services.background.idle();
    await app.t.services.outbox.idle();
    const mails = smtp.to(s.email);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toMatch(/reset/i);
  });
});
