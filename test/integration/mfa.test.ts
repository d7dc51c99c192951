// Second factors (docs/api.md "Second factors"): TOTP enrolment, the MFA step of
// a sign-in, recovery codes, the 5-failure rule, step-up on sensitive changes
// and password reset, the MFA_REQUIRED_ROLES policy and an admin's reset, on
// both backends; a used time step refused on another instance. Codes are
// computed here from the secret with RFC 6238's own algorithm (not the
// service's library), on the app's clock, which the tests move a step ahead
// whenever they need a fresh code.
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMfaKey } from '../../src/config.js';
import { recoveryCodes, totpFactors } from '../../src/db/schema.js';
import { secretBox } from '../../src/security/secret-box.js';
import { MemoryStore } from '../../src/store/memory.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import {
  client,
  login,
  loginAdmin,
  PASSWORD,
  read,
  registerAndLogin,
  typed,
  uniqueEmail,
  type Call,
  type Session,
} from '../helpers/http.js';
import { BACKENDS, openDatabase } from '../helpers/services.js';
import { TestSmtp, tokenFrom } from '../helpers/smtp.js';
import { useTestApp } from '../helpers/use-app.js';
import { useTwoInstances } from '../helpers/two-instances.js';
import { rfc6238, STEP_MS } from '../helpers/totp.js';

const NEW_PASSWORD = 'another-Long-passphrase-77';

const claimsOf = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString());
const from = (ip: string) => ({ env: { incoming: { socket: { remoteAddress: ip } } } });
let ipSeq = 0;
/** A fresh client address per test, so sign-in limits of one test do not touch another. */
const freshIp = () => `198.51.100.${(ipSeq++ % 250) + 1}`;

/** A clock the tests move: real time plus a skew. */
function movableClock() {
  let skew = 0;
  return {
    now: () => Date.now() + skew,
    /** Move to the next time step, so the next code is one no earlier request used. */
    nextStep() {
      skew += STEP_MS;
    },
    advance(ms: number) {
      skew += ms;
    },
  };
}

/** A 6-digit code that no step within the ±1 drift window of `atMs` gives for this secret. */
function wrongCode(secret: string, atMs: number): string {
  const near = new Set([-1, 0, 1].map((k) => rfc6238(secret, atMs + k * STEP_MS)));
  for (let n = 100000; ; n++) if (!near.has(String(n))) return String(n);
}

type Totp = { secret: string; recoveryCodes: string[] };

async function enableTotp(
  call: Call,
  s: Session,
  clock: ReturnType<typeof movableClock>,
  extra: { endOtherSessions?: boolean } = {},
): Promise<Totp> {
  const enrol = await call('POST', '/users/me/mfa/totp', { token: s.accessToken, body: { currentPassword: PASSWORD } });
  expect(enrol.status, enrol.text).toBe(200);
  clock.nextStep();
  const confirm = await call('POST', '/users/me/mfa/totp/confirm', {
    token: s.accessToken,
    body: { code: rfc6238(enrol.body.secret, clock.now()), ...extra },
  });
  expect(confirm.status, confirm.text).toBe(200);
  return { secret: enrol.body.secret, recoveryCodes: confirm.body.recoveryCodes };
}

describe.each(BACKENDS)('second factors on %s', (backend) => {
  const clock = movableClock();
  const smtp = new TestSmtp();
  beforeAll(() => smtp.start());
  afterAll(() => smtp.stop());
  const app = useTestApp(backend, () => ({
    clock: clock.now,
    overrides: { SMTP_URL: smtp.url, MFA_REQUIRED_ROLES: 'moderator', MAIL_PER_ADDRESS_PER_HOUR: '100' },
    app: { mail: { pollMs: 50, baseBackoffMs: 50, maxBackoffMs: 200 } },
  }));
  const { call } = app;
  // Requests a well-formed client sends go through the typed client (over app.request()), so a
  // change to these routes breaks this file at compile time; requests from a given client address
  // (the connection's env), malformed bodies and the audit-log reads beside detail assertions stay raw.
  const t = (s?: { accessToken: string }) => typed(app.t, s);

  /** Every mail asked for so far is queued, and the sender has nothing left to send. */
  const settled = async () => {
    await app.t.services.background.idle();
    await app.t.services.outbox.idle();
  };

  /** Password right: the MFA step's problem. */
  async function mfaStep(email: string, ip = freshIp()) {
    const res = await call('POST', '/auth/login', { body: { email, password: PASSWORD }, ...from(ip) });
    expect(res.status, res.text).toBe(401);
    expect(res.body.code).toBe('mfa_required');
    expect(res.body.accessToken).toBeUndefined();
    return res.body as { mfaToken: string; methods: string[] };
  }

  const verify = (mfaToken: string, code: string, ip = freshIp()) =>
    call('POST', '/auth/mfa/verify', { body: { mfaToken, code }, ...from(ip) });

  describe('TOTP enrolment', () => {
    it('turns on only after a right code, shows 10 recovery codes once, and keeps the secret sealed in the database', async () => {
      const s = await registerAndLogin(call);
      const enrol = await read(await t(s).api.users.me.mfa.totp.$post({ json: { currentPassword: PASSWORD } }));
      expect(enrol.status, enrol.text).toBe(200);
      expect(enrol.body.secret).toMatch(/^[A-Z2-7]{32}$/);
      const uri = new URL(enrol.body.otpauthUri);
      expect(uri.protocol).toBe('otpauth:');
      expect(uri.host).toBe('totp');
      expect(decodeURIComponent(uri.pathname)).toContain(s.email);
      expect(Object.fromEntries(uri.searchParams)).toMatchObject({
        secret: enrol.body.secret,
        algorithm: 'SHA1',
        digits: '6',
        period: '30',
      });
      // Pending is not on: sign-in needs no code yet.
      expect((await read(await t(s).api.users.me.$get())).body.mfa).toEqual({ totp: false, passkeys: 0 });
      await login(call, s.email, PASSWORD);

      const wrong = await read(await t(s).api.users.me.mfa.totp.confirm.$post({ json: { code: '000000' } }));
      expect(wrong.status).toBe(400);
      expect(wrong.body.code).toBe('invalid_mfa_code');

      clock.nextStep();
      const ok = await read(await t(s).api.users.me.mfa.totp.confirm.$post({ json: { code: rfc6238(enrol.body.secret, clock.now()) } }));
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.recoveryCodes).toHaveLength(10);
      expect(new Set(ok.body.recoveryCodes).size).toBe(10);
      for (const c of ok.body.recoveryCodes) expect(c).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
      expect((await read(await t(s).api.users.me.$get())).body.mfa).toEqual({ totp: true, passkeys: 0 });

      const again = await read(await t(s).api.users.me.mfa.totp.$post({ json: { currentPassword: PASSWORD } }));
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('mfa_already_enabled');

      // At rest: no secret and no code in the clear.
      const db = app.t.deps.database.db;
      const [row] = await db.select().from(totpFactors).where(eq(totpFactors.userId, s.userId));
      expect(row!.secretSealed).not.toContain(enrol.body.secret);
      const hashes = (await db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, s.userId))).map((r) => r.codeHash);
      expect(hashes).toHaveLength(10);
      for (const c of ok.body.recoveryCodes) expect(hashes.join()).not.toContain(c.replace(/-/g, ''));
    });

    it('needs the current password to enrol, and a pending enrolment to confirm', async () => {
      const s = await registerAndLogin(call);
      const noPending = await read(await t(s).api.users.me.mfa.totp.confirm.$post({ json: { code: '123456' } }));
      expect(noPending.status).toBe(409);
      expect(noPending.body.code).toBe('mfa_not_enabled');
      const wrongPw = await call('POST', '/users/me/mfa/totp', {
        token: s.accessToken,
        body: { currentPassword: 'not-my-password-1' },
        ...from(freshIp()),
      });
      expect(wrongPw.status).toBe(403);
      expect(wrongPw.body.code).toBe('invalid_credentials');
      // A new enrolment replaces a pending one: the first secret's codes no longer confirm.
      const first = await read(await t(s).api.users.me.mfa.totp.$post({ json: { currentPassword: PASSWORD } }));
      const second = await read(await t(s).api.users.me.mfa.totp.$post({ json: { currentPassword: PASSWORD } }));
      expect(second.body.secret).not.toBe(first.body.secret);
      clock.nextStep();
      const stale = await read(await t(s).api.users.me.mfa.totp.confirm.$post({ json: { code: rfc6238(first.body.secret, clock.now()) } }));
      expect(stale.status).toBe(400);
      const fresh = await read(
        await t(s).api.users.me.mfa.totp.confirm.$post({ json: { code: rfc6238(second.body.secret, clock.now()) } }),
      );
      expect(fresh.status, fresh.text).toBe(200);
    });
    it('counts wrong enrolment codes as failed sign-ins and audits them: past the limit even the right code waits (429)', async () => {
      const admin = await loginAdmin(call);
      const s = await registerAndLogin(call);
      const ip = freshIp();
      const enrol = await call('POST', '/users/me/mfa/totp', { token: s.accessToken, body: { currentPassword: PASSWORD }, ...from(ip) });
      expect(enrol.status, enrol.text).toBe(200);
      const confirmFrom = (code: string, at: string) =>
        call('POST', '/users/me/mfa/totp/confirm', { token: s.accessToken, body: { code }, ...from(at) });
      // LOGIN_MAX_FAILURES (5) wrong codes for this account from this address.
      for (let i = 0; i < 5; i++) {
        clock.nextStep();
        const wrong = await confirmFrom(wrongCode(enrol.body.secret, clock.now()), ip);
        expect(wrong.status, wrong.text).toBe(400);
        expect(wrong.body.code).toBe('invalid_mfa_code');
      }
      clock.nextStep();
      const right = rfc6238(enrol.body.secret, clock.now());
      const locked = await confirmFrom(right, ip);
      expect(locked.status, locked.text).toBe(429);
      expect(locked.body.code).toBe('rate_limited');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await read(await t(s).api.users.me.$get())).body.mfa.totp).toBe(false);
      // They are the account's sign-in failures: the right password from that address waits too.
      const signIn = await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD }, ...from(ip) });
      expect(signIn.status).toBe(429);
      // From elsewhere the right code still turns TOTP on.
      expect((await confirmFrom(right, freshIp())).status).toBe(200);

      await app.t.services.audit.flush();
      const logs = await call('GET', `/admin/logs?actorId=${s.userId}&action=users.me.mfa.totp.confirm&limit=20`, {
        token: admin.accessToken,
      });
      const details = logs.body.items.map((e: { detail: string | null }) => e.detail);
      expect(details.filter((d: string | null) => d === 'mfa_failed')).toHaveLength(5);
      expect(details).toContain('mfa_locked');
      expect(details).toContain('mfa_enabled: totp');
      expect(JSON.stringify(logs.body)).not.toContain(right);
    });

    it('refuses at sign-in the code that confirmed the enrolment (its time step is spent)', async () => {
      const s = await registerAndLogin(call);
      const enrol = await read(await t(s).api.users.me.mfa.totp.$post({ json: { currentPassword: PASSWORD } }));
      clock.nextStep();
      const code = rfc6238(enrol.body.secret, clock.now());
      expect((await read(await t(s).api.users.me.mfa.totp.confirm.$post({ json: { code } }))).status).toBe(200);
      const replay = await verify((await mfaStep(s.email)).mfaToken, code);
      expect(replay.status).toBe(401);
      expect(replay.body.code).toBe('invalid_mfa_code');
    });

    it('ends every other session of the user when asked (endOtherSessions), never the current one', async () => {
      const s = await registerAndLogin(call);
      const other = await login(call, s.email, PASSWORD);
      await enableTotp(call, s, clock, { endOtherSessions: true });
      const old = await read(await t(other).api.users.me.$get());
      expect(old.status).toBe(401);
      expect(old.body.code).toBe('invalid_token');
      expect((await read(await t().api.auth.refresh.$post({ json: { refreshToken: other.refreshToken } }))).status).toBe(401);
      const left = await read(await t(s).api.users.me.sessions.$get());
      expect(left.status, left.text).toBe(200);
      expect(left.body.items.map((x: { current: boolean }) => x.current)).toEqual([true]);

      // Without it, the other sessions are kept (as before).
      const u = await registerAndLogin(call);
      const kept = await login(call, u.email, PASSWORD);
      await enableTotp(call, u, clock);
      expect((await read(await t(kept).api.users.me.$get())).status).toBe(200);
      expect((await read(await t(u).api.users.me.sessions.$get())).body.items).toHaveLength(2);
    });
  });

  describe('the MFA step of a sign-in', () => {
    it('trades the mfaToken and a fresh code for tokens whose amr is pwd+otp (kept across refresh); the token and the step work once', async () => {
      const s = await registerAndLogin(call);
      const { secret } = await enableTotp(call, s, clock);
      const step = await mfaStep(s.email);
      expect(step.mfaToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(step.methods).toEqual(['totp', 'recovery_code']);

      clock.nextStep();
      const code = rfc6238(secret, clock.now());
      const ok = await verify(step.mfaToken, code);
      expect(ok.status, ok.text).toBe(200);
      expect(ok.headers.get('cache-control')).toBe('no-store');
      expect(claimsOf(ok.body.accessToken)).toMatchObject({ sub: s.userId, amr: ['pwd', 'otp'] });
      expect((await read(await t(ok.body).api.users.me.$get())).status).toBe(200);
      const refreshed = await read(await t().api.auth.refresh.$post({ json: { refreshToken: ok.body.refreshToken } }));
      expect(claimsOf(refreshed.body.accessToken).amr).toEqual(['pwd', 'otp']);

      const tokenAgain = await verify(step.mfaToken, code);
      expect(tokenAgain.status).toBe(401);
      expect(tokenAgain.body.code).toBe('invalid_mfa_token');
      // The same code (its time step is spent) on a new sign-in, and the step before it.
      const replay = await verify((await mfaStep(s.email)).mfaToken, code);
      expect(replay.status).toBe(401);
      expect(replay.body.code).toBe('invalid_mfa_code');
      const older = await verify((await mfaStep(s.email)).mfaToken, rfc6238(secret, clock.now() - STEP_MS));
      expect(older.body.code).toBe('invalid_mfa_code');
      clock.nextStep();
      expect((await verify((await mfaStep(s.email)).mfaToken, rfc6238(secret, clock.now()))).status).toBe(200);
    });

    it('mails the owner when a right code is entered again after it was accepted (once per 15 minutes), and not for a wrong code', async () => {
      const s = await registerAndLogin(call);
      const { secret } = await enableTotp(call, s, clock);
      // The registration's verification mail and the TOTP-on notice.
      await smtp.waitFor(s.email, 2);
      clock.nextStep();
      const code = rfc6238(secret, clock.now());
      expect((await verify((await mfaStep(s.email)).mfaToken, code)).status).toBe(200);
      const wrong = await verify((await mfaStep(s.email)).mfaToken, code === '000000' ? '111111' : '000000');
      expect(wrong.body.code).toBe('invalid_mfa_code');
      await settled();
      expect(smtp.to(s.email)).toHaveLength(2);

      const replay = await verify((await mfaStep(s.email)).mfaToken, code, '203.0.113.77');
      expect(replay.status).toBe(401);
      expect(replay.body.code).toBe('invalid_mfa_code');
      const [notice] = (await smtp.waitFor(s.email, 3)).filter((m) => /used twice/.test(m.subject));
      expect(notice!.text).toMatch(/entered again after it had been accepted, and refused/);
      expect(notice!.text).toContain('203.0.113.77');
      expect(notice!.text).not.toContain(code);
      expect(notice!.text).not.toContain(secret);
      expect(notice!.text).not.toContain('http');
      // A second reuse inside the window is refused too, and not mailed again.
      expect((await verify((await mfaStep(s.email)).mfaToken, code)).body.code).toBe('invalid_mfa_code');
      await settled();
      expect(smtp.to(s.email)).toHaveLength(3);
    });

    it('accepts a code one step old or one step ahead (clock drift), and not two', async () => {
      const s = await registerAndLogin(call);
      const { secret } = await enableTotp(call, s, clock);
      clock.nextStep();
      clock.nextStep();
      clock.nextStep();
      const tooOld = await verify((await mfaStep(s.email)).mfaToken, rfc6238(secret, clock.now() - 2 * STEP_MS));
      expect(tooOld.body.code).toBe('invalid_mfa_code');
      expect((await verify((await mfaStep(s.email)).mfaToken, rfc6238(secret, clock.now() - STEP_MS))).status).toBe(200);
      expect((await verify((await mfaStep(s.email)).mfaToken, rfc6238(secret, clock.now() + STEP_MS))).status).toBe(200);
      const tooNew = await verify((await mfaStep(s.email)).mfaToken, rfc6238(secret, clock.now() + 2 * STEP_MS));
      expect(tooNew.body.code).toBe('invalid_mfa_code');
    });

    it('kills the mfaToken after 5 wrong codes, and counts them as failed sign-ins for the lockout', async () => {
      const s = await registerAndLogin(call);
      const { secret } = await enableTotp(call, s, clock);
      const ip = freshIp();
      const { mfaToken } = await mfaStep(s.email, ip);
      for (let i = 0; i < 5; i++) {
        const wrong = await verify(mfaToken, String(100000 + i), ip);
        expect(wrong.status).toBe(401);
        expect(wrong.body.code).toBe('invalid_mfa_code');
      }
      clock.nextStep();
      const dead = await verify(mfaToken, rfc6238(secret, clock.now()), ip);
      expect(dead.status).toBe(401);
      expect(dead.body.code).toBe('invalid_mfa_token');
      // LOGIN_MAX_FAILURES (5) reached for this account from this address: even the right password waits.
      const locked = await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD }, ...from(ip) });
      expect(locked.status).toBe(429);
      expect(locked.body.code).toBe('rate_limited');
    });

    it('does not let a right password forgive the wrong codes of an earlier step (sign in again, guess again)', async () => {
      const s = await registerAndLogin(call);
      const { secret } = await enableTotp(call, s, clock);
      const ip = freshIp();
      // 3 wrong codes, a new sign-in with the right password, 2 more: the account's 5 failures are reached.
      const first = await mfaStep(s.email, ip);
      for (const c of ['111111', '222222', '333333']) expect((await verify(first.mfaToken, c, ip)).body.code).toBe('invalid_mfa_code');
      const second = await mfaStep(s.email, ip);
      for (const c of ['444444', '555555']) expect((await verify(second.mfaToken, c, ip)).body.code).toBe('invalid_mfa_code');
      const locked = await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD }, ...from(ip) });
      expect(locked.status).toBe(429);
      // A completed sign-in (elsewhere, before the lockout) forgives them: same rule as passwords.
      const other = freshIp();
      clock.nextStep();
      expect((await verify((await mfaStep(s.email, other)).mfaToken, rfc6238(secret, clock.now()), other)).status).toBe(200);
    });

    it('gives one session for one mfaToken answered right twice at once; the other answer gets invalid_mfa_token', async () => {
      const s = await registerAndLogin(call);
      const { recoveryCodes: codes } = await enableTotp(call, s, clock);
      const before = (await read(await t(s).api.users.me.sessions.$get())).body.items.length;
      const { mfaToken } = await mfaStep(s.email);
      const both = await Promise.all([verify(mfaToken, codes[0]!), verify(mfaToken, codes[1]!)]);
      expect(both.map((r) => r.status).sort()).toEqual([200, 401]);
      expect(both.find((r) => r.status === 401)!.body.code).toBe('invalid_mfa_token');
      const sessions = await read(await t(s).api.users.me.sessions.$get());
      expect(sessions.body.items).toHaveLength(before + 1);
    });

    it('refuses a made-up mfaToken, and a body with both or neither of code and passkey', async () => {
      const bad = await read(await t().api.auth.mfa.verify.$post({ json: { mfaToken: 'x'.repeat(43), code: '123456' } }));
      expect(bad.status).toBe(401);
      expect(bad.body.code).toBe('invalid_mfa_token');
      const neither = await call('POST', '/auth/mfa/verify', { body: { mfaToken: 'x'.repeat(43) } });
      expect(neither.status).toBe(400);
      expect(neither.body.code).toBe('validation_failed');
    });
  });

  describe('recovery codes', () => {
    it('signs in with each code once; a new set replaces the old one and needs a TOTP code', async () => {
      const s = await registerAndLogin(call);
      const { secret, recoveryCodes: codes } = await enableTotp(call, s, clock);
      const first = await verify((await mfaStep(s.email)).mfaToken, codes[0]!.toUpperCase());
      expect(first.status, first.text).toBe(200);
      expect(claimsOf(first.body.accessToken).amr).toEqual(['pwd', 'otp']);
      const spent = await verify((await mfaStep(s.email)).mfaToken, codes[0]!);
      expect(spent.status).toBe(401);
      expect(spent.body.code).toBe('invalid_mfa_code');
      // Typed without dashes, with spaces: still the same code.
      expect((await verify((await mfaStep(s.email)).mfaToken, codes[1]!.replace(/-/g, ' '))).status).toBe(200);

      const noCode = await read(await t(s).api.users.me.mfa['recovery-codes'].$post({ json: { currentPassword: PASSWORD } }));
      expect(noCode.status).toBe(403);
      expect(noCode.body.code).toBe('mfa_code_required');
      clock.nextStep();
      const fresh = await read(
        await t(s).api.users.me.mfa['recovery-codes'].$post({ json: { currentPassword: PASSWORD, code: rfc6238(secret, clock.now()) } }),
      );
      expect(fresh.status, fresh.text).toBe(200);
      expect(fresh.body.recoveryCodes).toHaveLength(10);
      expect((await verify((await mfaStep(s.email)).mfaToken, codes[2]!)).body.code).toBe('invalid_mfa_code');
      expect((await verify((await mfaStep(s.email)).mfaToken, fresh.body.recoveryCodes[0])).status).toBe(200);
    });

    it("refuses one account's recovery code in another account's MFA step; it still works for its owner", async () => {
      const a = await registerAndLogin(call);
      const b = await registerAndLogin(call);
      const { recoveryCodes: codesOfA } = await enableTotp(call, a, clock);
      await enableTotp(call, b, clock);
      const stolen = await verify((await mfaStep(b.email)).mfaToken, codesOfA[0]!);
      expect(stolen.status).toBe(401);
      expect(stolen.body.code).toBe('invalid_mfa_code');
      const own = await verify((await mfaStep(a.email)).mfaToken, codesOfA[0]!);
      expect(own.status, own.text).toBe(200);
      expect(claimsOf(own.body.accessToken).sub).toBe(a.userId);
    });

    it('are refused to a user without a second factor', async () => {
      const s = await registerAndLogin(call);
      const res = await read(await t(s).api.users.me.mfa['recovery-codes'].$post({ json: { currentPassword: PASSWORD } }));
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('mfa_not_enabled');
    });
  });

  describe('turning TOTP off', () => {
    it('needs the password and a code; afterwards sign-in needs none and the recovery codes are gone', async () => {
      const s = await registerAndLogin(call);
      const { secret, recoveryCodes: codes } = await enableTotp(call, s, clock);
      const ip = freshIp();
      const noCode = await call('DELETE', '/users/me/mfa/totp', { token: s.accessToken, body: { currentPassword: PASSWORD }, ...from(ip) });
      expect(noCode.status).toBe(403);
      expect(noCode.body.code).toBe('mfa_code_required');
      const wrongCode = await call('DELETE', '/users/me/mfa/totp', {
        token: s.accessToken,
        body: { currentPassword: PASSWORD, code: '000000' },
        ...from(ip),
      });
      expect(wrongCode.status).toBe(403);
      expect(wrongCode.body.code).toBe('invalid_mfa_code');
      clock.nextStep();
      const code = rfc6238(secret, clock.now());
      const wrongPw = await call('DELETE', '/users/me/mfa/totp', {
        token: s.accessToken,
        body: { currentPassword: 'not-my-password-1', code },
        ...from(ip),
      });
      expect(wrongPw.status).toBe(403);
      expect(wrongPw.body.code).toBe('invalid_credentials');
      // The wrong password did not spend the code.
      const off = await call('DELETE', '/users/me/mfa/totp', {
        token: s.accessToken,
        body: { currentPassword: PASSWORD, code },
        ...from(ip),
      });
      expect(off.status, off.text).toBe(204);
      expect((await read(await t(s).api.users.me.$get())).body.mfa.totp).toBe(false);
      await login(call, s.email, PASSWORD);
      expect(await app.t.deps.database.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, s.userId))).toHaveLength(0);
      const again = await read(await t(s).api.users.me.mfa.totp.$delete({ json: { currentPassword: PASSWORD, code: codes[0] } }));
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('mfa_not_enabled');
    });

    it('also takes a recovery code', async () => {
      const s = await registerAndLogin(call);
      const { recoveryCodes: codes } = await enableTotp(call, s, clock);
      const off = await read(await t(s).api.users.me.mfa.totp.$delete({ json: { currentPassword: PASSWORD, code: codes[9] } }));
      expect(off.status, off.text).toBe(204);
    });
  });

  describe('step-up with TOTP on', () => {
    it('asks PUT and DELETE /users/me for a code besides the password (a name change needs neither)', async () => {
      const s = await registerAndLogin(call);
      const { secret } = await enableTotp(call, s, clock);
      expect((await read(await t(s).api.users.me.$put({ json: { name: 'Renamed' } }))).status).toBe(200);
      const ip = freshIp();
      const noCode = await call('PUT', '/users/me', {
        token: s.accessToken,
        body: { password: NEW_PASSWORD, currentPassword: PASSWORD },
        ...from(ip),
      });
      expect(noCode.status).toBe(403);
      expect(noCode.body.code).toBe('mfa_code_required');
      const wrong = await call('PUT', '/users/me', {
        token: s.accessToken,
        body: { email: uniqueEmail(), currentPassword: PASSWORD, code: '000000' },
        ...from(ip),
      });
      expect(wrong.status).toBe(403);
      expect(wrong.body.code).toBe('invalid_mfa_code');
      const noDelete = await call('DELETE', '/users/me', { token: s.accessToken, body: { currentPassword: PASSWORD }, ...from(ip) });
      expect(noDelete.body.code).toBe('mfa_code_required');
      clock.nextStep();
      const ok = await call('PUT', '/users/me', {
        token: s.accessToken,
        body: { password: NEW_PASSWORD, currentPassword: PASSWORD, code: rfc6238(secret, clock.now()) },
        ...from(ip),
      });
      expect(ok.status, ok.text).toBe(200);
      clock.nextStep();
      const gone = await read(
        await t(s).api.users.me.$delete({ json: { currentPassword: NEW_PASSWORD, code: rfc6238(secret, clock.now()) } }),
      );
      expect(gone.status, gone.text).toBe(204);
    });

    it('asks a password reset for a code: the mailed token stays usable until a right one comes', async () => {
      const s = await registerAndLogin(call);
      const { secret } = await enableTotp(call, s, clock);
      expect((await read(await t().api.auth.password.forgot.$post({ json: { email: s.email } }))).status).toBe(202);
      // The verification mail, the notice that TOTP is on, then the reset link.
      const mails = await smtp.waitFor(s.email, 3);
      const token = tokenFrom(mails.find((m) => /reset/i.test(m.subject))!);
      const noCode = await read(await t().api.auth.password.reset.$post({ json: { token, password: NEW_PASSWORD } }));
      expect(noCode.status).toBe(403);
      expect(noCode.body.code).toBe('mfa_code_required');
      const wrong = await read(await t().api.auth.password.reset.$post({ json: { token, password: NEW_PASSWORD, code: '000000' } }));
      expect(wrong.status).toBe(403);
      expect(wrong.body.code).toBe('invalid_mfa_code');
      clock.nextStep();
      const ok = await read(
        await t().api.auth.password.reset.$post({ json: { token, password: NEW_PASSWORD, code: rfc6238(secret, clock.now()) } }),
      );
      expect(ok.status, ok.text).toBe(204);
      // The new password works, and the second factor is still asked for.
      const step = await read(await t().api.auth.login.$post({ json: { email: s.email, password: NEW_PASSWORD } }));
      expect(step.body.code).toBe('mfa_required');
    });
  });

  describe('MFA_REQUIRED_ROLES=moderator', () => {
    it('lets a moderator without a factor sign in to enrol and nothing else, until a factor is on', async () => {
      const admin = await loginAdmin(call);
      const s = await registerAndLogin(call);
      expect(
        (await read(await t(admin).api.users[':id'].roles.$put({ param: { id: s.userId }, json: { roles: ['moderator'] } }))).status,
      ).toBe(200);
      const m = await login(call, s.email, PASSWORD);
      for (const [method, path] of [
        ['GET', '/users'],
        ['GET', '/posts'],
        ['GET', '/users/me/sessions'],
        ['POST', '/posts'],
      ] as const) {
        const res = await call(method, path, { token: m.accessToken, ...(method === 'POST' ? { body: { title: 't', body: 'b' } } : {}) });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.code, `${method} ${path}`).toBe('mfa_enrollment_required');
      }
      expect((await read(await t(m).api.users.me.$get())).status).toBe(200);
      expect((await read(await t(m).api.users.me.passkeys.$get())).status).toBe(200);
      // Enrolling works with the same token, and then everything does.
      await enableTotp(call, m, clock);
      expect((await read(await t(m).api.users.$get({ query: {} }))).status).toBe(200);
      expect((await read(await t(m).api.posts.$get({ query: {} }))).status).toBe(200);
      // Users without the role are not concerned.
      const plain = await registerAndLogin(call);
      expect((await read(await t(plain).api.posts.$get({ query: {} }))).status).toBe(200);
      expect((await read(await t(m).api.auth.logout.$post({ json: { refreshToken: m.refreshToken } }))).status).toBe(204);
    });
  });

  describe('admin reset', () => {
    it('removes the factors of a user who lost them and ends their sessions; needs users:mfa:reset', async () => {
      const admin = await loginAdmin(call);
      const s = await registerAndLogin(call);
      await enableTotp(call, s, clock);
      const moderatorUser = await registerAndLogin(call);
      await read(await t(admin).api.users[':id'].roles.$put({ param: { id: moderatorUser.userId }, json: { roles: ['moderator'] } }));
      const mod = await login(call, moderatorUser.email, PASSWORD);
      const denied = await read(await t(mod).api.users[':id'].mfa.$delete({ param: { id: s.userId } }));
      expect(denied.status).toBe(403);

      const reset = await read(await t(admin).api.users[':id'].mfa.$delete({ param: { id: s.userId } }));
      expect(reset.status, reset.text).toBe(204);
      const old = await read(await t(s).api.users.me.$get());
      expect(old.status).toBe(401);
      expect(old.body.code).toBe('invalid_token');
      const fresh = await login(call, s.email, PASSWORD);
      expect((await read(await t(fresh).api.users.me.$get())).body.mfa).toEqual({ totp: false, passkeys: 0 });
      expect(claimsOf(fresh.accessToken).amr).toEqual(['pwd']);
      const unknown = await read(await t(admin).api.users[':id'].mfa.$delete({ param: { id: '00000000-0000-4000-8000-000000000000' } }));
      expect(unknown.status).toBe(404);
    });

    it('lets only an admin reset an admin', async () => {
      const admin = await loginAdmin(call);
      const created = await read(await t(admin).api.roles.$post({ json: { name: `helpdesk-${ipSeq}`, permissions: ['users:mfa:reset'] } }));
      expect(created.status, created.text).toBe(201);
      const desk = await registerAndLogin(call);
      await read(await t(admin).api.users[':id'].roles.$put({ param: { id: desk.userId }, json: { roles: ['user', created.body.name] } }));
      const d = await login(call, desk.email, PASSWORD);
      const refused = await read(await t(d).api.users[':id'].mfa.$delete({ param: { id: admin.userId } }));
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe('forbidden');
      const someone = await registerAndLogin(call);
      expect((await read(await t(d).api.users[':id'].mfa.$delete({ param: { id: someone.userId } }))).status).toBe(204);
    });
  });

  it('tells the owner by mail when TOTP goes on or off, the recovery codes are replaced or an admin resets the factors (no link, no secret)', async () => {
    const s = await registerAndLogin(call);
    const { secret, recoveryCodes: codes } = await enableTotp(call, s, clock);
    clock.nextStep();
    const renewed = await read(
      await t(s).api.users.me.mfa['recovery-codes'].$post({ json: { currentPassword: PASSWORD, code: rfc6238(secret, clock.now()) } }),
    );
    expect(renewed.status).toBe(200);
    const off = await read(
      await t(s).api.users.me.mfa.totp.$delete({ json: { currentPassword: PASSWORD, code: renewed.body.recoveryCodes[0] } }),
    );
    expect(off.status, off.text).toBe(204);
    const admin = await loginAdmin(call);
    expect((await read(await t(admin).api.users[':id'].mfa.$delete({ param: { id: s.userId } }))).status).toBe(204);
    // The verification mail of the registration, then the four notices.
    const mails = (await smtp.waitFor(s.email, 5)).filter((m) => /sign-in settings/i.test(m.subject));
    const said = mails.map((m) => m.text);
    expect(said.some((t) => /TOTP\) was turned on/.test(t))).toBe(true);
    expect(said.some((t) => /new set of recovery codes/.test(t))).toBe(true);
    expect(said.some((t) => /TOTP\) was turned off/.test(t))).toBe(true);
    expect(said.some((t) => /administrator removed every second factor/.test(t))).toBe(true);
    for (const m of mails) {
      expect(m.text).toMatch(/if it was not you/i);
      expect(m.text).not.toContain('http');
      expect(m.text).not.toContain(secret);
      for (const c of [...codes, ...renewed.body.recoveryCodes]) expect(m.text).not.toContain(c);
    }
  });

  it('audits every factor event by name, never with a secret or a code', async () => {
    const s = await registerAndLogin(call);
    const { secret, recoveryCodes: codes } = await enableTotp(call, s, clock);
    await verify((await mfaStep(s.email)).mfaToken, '000000');
    await verify((await mfaStep(s.email)).mfaToken, codes[0]!);
    clock.nextStep();
    await read(await t(s).api.users.me.mfa.totp.$delete({ json: { currentPassword: PASSWORD, code: rfc6238(secret, clock.now()) } }));
    const admin = await loginAdmin(call);
    await read(await t(admin).api.users[':id'].mfa.$delete({ param: { id: s.userId } }));
    await app.t.services.audit.flush();
    const own = await call('GET', `/admin/logs?actorId=${s.userId}&limit=100`, { token: admin.accessToken });
    const details = own.body.items.map((e: { detail: string | null }) => e.detail);
    for (const d of [
      'mfa_totp_pending',
      'mfa_enabled: totp',
      'mfa_required',
      'mfa_failed',
      'mfa_verified: recovery_code',
      'mfa_disabled: totp',
    ]) {
      expect(details, d).toContain(d);
    }
    const byAdmin = await call('GET', `/admin/logs?actorId=${admin.userId}&action=users.mfa.reset&limit=5`, { token: admin.accessToken });
    expect(byAdmin.body.items[0]).toMatchObject({ detail: 'mfa_reset', status: 204 });
    const everything = `${JSON.stringify(own.body)}\n${app.t.logs.text}`;
    expect(everything).not.toContain(secret);
    for (const c of codes) expect(everything).not.toContain(c);
  });
});

describe.each(BACKENDS)('the mfaToken on %s, on a clock the test moves', (backend) => {
  const clock = movableClock();
  // The in-process store reads the same clock, so the token's time to live passes with it.
  const { call } = useTestApp(backend, () => ({ clock: clock.now, store: new MemoryStore(clock.now) }));

  it('lives 5 minutes after the password step: answered later it is invalid_mfa_token', async () => {
    const s = await registerAndLogin(call);
    const { secret } = await enableTotp(call, s, clock);
    const signIn = async () =>
      (await call('POST', '/auth/login', { body: { email: s.email, password: PASSWORD } })).body.mfaToken as string;
    const [early, late] = [await signIn(), await signIn()];
    clock.advance(4 * 60_000 + 30_000);
    const inTime = await call('POST', '/auth/mfa/verify', { body: { mfaToken: early, code: rfc6238(secret, clock.now()) } });
    expect(inTime.status, inTime.text).toBe(200);
    clock.advance(31_000);
    const expired = await call('POST', '/auth/mfa/verify', { body: { mfaToken: late, code: rfc6238(secret, clock.now()) } });
    expect(expired.status).toBe(401);
    expect(expired.body.code).toBe('invalid_mfa_token');
  });
});

describe('a used time step on two instances (PostgreSQL, Redis)', () => {
  const clock = movableClock();
  const two = useTwoInstances({ clock: clock.now });

  const step = async (call: Call, email: string) =>
    (await call('POST', '/auth/login', { body: { email, password: PASSWORD } })).body.mfaToken as string;

  it('refuses on B a code A accepted, and lets one of two simultaneous uses of a code win', async () => {
    const s = await registerAndLogin(two.callA);
    const { secret } = await enableTotp(two.callA, s, clock);
    clock.nextStep();
    const code = rfc6238(secret, clock.now());
    expect((await two.callA('POST', '/auth/mfa/verify', { body: { mfaToken: await step(two.callA, s.email), code } })).status).toBe(200);
    const onB = await two.callB('POST', '/auth/mfa/verify', { body: { mfaToken: await step(two.callB, s.email), code } });
    expect(onB.status).toBe(401);
    expect(onB.body.code).toBe('invalid_mfa_code');

    clock.nextStep();
    const next = rfc6238(secret, clock.now());
    const [ta, tb] = [await step(two.callA, s.email), await step(two.callB, s.email)];
    const both = await Promise.all([
      two.callA('POST', '/auth/mfa/verify', { body: { mfaToken: ta, code: next } }),
      two.callB('POST', '/auth/mfa/verify', { body: { mfaToken: tb, code: next } }),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 401]);
  });

  it('finishes on B a sign-in step started on A', async () => {
    const s = await registerAndLogin(two.callA);
    const { secret } = await enableTotp(two.callA, s, clock);
    const mfaToken = await step(two.callA, s.email);
    clock.nextStep();
    const ok = await two.callB('POST', '/auth/mfa/verify', { body: { mfaToken, code: rfc6238(secret, clock.now()) } });
    expect(ok.status, ok.text).toBe(200);
    // Taken: A cannot trade it again.
    expect((await two.callA('POST', '/auth/mfa/verify', { body: { mfaToken, code: '123456' } })).body.code).toBe('invalid_mfa_token');
  });
});

describe.each(BACKENDS)('a rotated MFA_ENCRYPTION_KEY on %s', (backend) => {
  const clock = movableClock();
  const OLD = randomBytes(32).toString('base64');
  const NEW = randomBytes(32).toString('hex');
  const UNRELATED = randomBytes(32).toString('hex');
  let db: Awaited<ReturnType<typeof openDatabase>>;
  const started: TestApp[] = [];
  beforeAll(async () => {
    db = await openDatabase(backend);
  });
  afterAll(async () => {
    for (const t of started) await t.stop();
    await db.dispose();
  });
  /** An instance on the shared database with these keys, its start-up work done. */
  async function instance(keys: Record<string, string>) {
    const t = await createTestApp({ database: db.database, clock: clock.now, overrides: keys });
    started.push(t);
    await t.services.background.idle();
    return { t, call: client(t) };
  }
  const sealedOf = async (userId: string) =>
    (await db.database.db.select().from(totpFactors).where(eq(totpFactors.userId, userId)))[0]!.secretSealed;
  /** Password, then a fresh TOTP code, on one instance. */
  async function signInWithCode(call: Call, email: string, secret: string) {
    const first = await call('POST', '/auth/login', { body: { email, password: PASSWORD } });
    expect(first.body.code, first.text).toBe('mfa_required');
    clock.nextStep();
    return call('POST', '/auth/mfa/verify', { body: { mfaToken: first.body.mfaToken, code: rfc6238(secret, clock.now()) } });
  }

  it('keeps codes working with the old key in MFA_PREVIOUS_ENCRYPTION_KEYS, seals every secret again at start, and then works without the old key', async () => {
    const a = await instance({ MFA_ENCRYPTION_KEY: OLD });
    const users = [await registerAndLogin(a.call), await registerAndLogin(a.call)];
    const totps = [await enableTotp(a.call, users[0]!, clock), await enableTotp(a.call, users[1]!, clock)];
    const before = [await sealedOf(users[0]!.userId), await sealedOf(users[1]!.userId)];

    // The new key alone cannot read them: the service says so instead of calling the code wrong.
    const newOnly = await instance({ MFA_ENCRYPTION_KEY: NEW });
    const refused = await signInWithCode(newOnly.call, users[0]!.email, totps[0]!.secret);
    expect(refused.status, refused.text).toBe(503);
    expect(refused.body.code).toBe('service_unavailable');
    expect(await sealedOf(users[0]!.userId)).toBe(before[0]);

    // With the old key among the previous ones, the start seals both again under the new key.
    const rotated = await instance({ MFA_ENCRYPTION_KEY: NEW, MFA_PREVIOUS_ENCRYPTION_KEYS: `${UNRELATED}, ${OLD}` });
    expect(rotated.t.logs.text).toMatch(/"resealed":2,"unreadable":0/);
    for (const [i, u] of users.entries()) {
      const now = await sealedOf(u.userId);
      expect(now).not.toBe(before[i]);
      expect(secretBox(parseMfaKey(NEW)!).open(now, u.userId)).toBe(totps[i]!.secret);
    }
    expect(rotated.t.logs.text).not.toContain(totps[0]!.secret);

    // From now on the new key alone will do.
    const later = await instance({ MFA_ENCRYPTION_KEY: NEW });
    for (const [i, u] of users.entries()) {
      const ok = await signInWithCode(later.call, u.email, totps[i]!.secret);
      expect(ok.status, ok.text).toBe(200);
      expect(claimsOf(ok.body.accessToken).amr).toEqual(['pwd', 'otp']);
    }
  });

  it('seals again on first use a secret that an instance still on the old key sealed during the rollout', async () => {
    const rotated = await instance({ MFA_ENCRYPTION_KEY: NEW, MFA_PREVIOUS_ENCRYPTION_KEYS: OLD });
    const old = await instance({ MFA_ENCRYPTION_KEY: OLD });
    const u = await registerAndLogin(old.call);
    const { secret } = await enableTotp(old.call, u, clock);
    const before = await sealedOf(u.userId);
    expect(() => secretBox(parseMfaKey(NEW)!).open(before, u.userId)).toThrow();

    const ok = await signInWithCode(rotated.call, u.email, secret);
    expect(ok.status, ok.text).toBe(200);
    const after = await sealedOf(u.userId);
    expect(after).not.toBe(before);
    expect(secretBox(parseMfaKey(NEW)!).open(after, u.userId)).toBe(secret);
  });

  it('confirms an enrolment begun under the old key (sealing it under the new one), and asks to start again once that key is gone', async () => {
    const old = await instance({ MFA_ENCRYPTION_KEY: OLD });
    const rotated = await instance({ MFA_ENCRYPTION_KEY: NEW, MFA_PREVIOUS_ENCRYPTION_KEYS: OLD });
    const newOnly = await instance({ MFA_ENCRYPTION_KEY: NEW });

    const u = await registerAndLogin(old.call);
    const enrol = await old.call('POST', '/users/me/mfa/totp', { token: u.accessToken, body: { currentPassword: PASSWORD } });
    expect(enrol.status, enrol.text).toBe(200);
    clock.nextStep();
    const onRotated = await rotated.call('POST', '/users/me/mfa/totp/confirm', {
      token: (await login(rotated.call, u.email, PASSWORD)).accessToken,
      body: { code: rfc6238(enrol.body.secret, clock.now()) },
    });
    expect(onRotated.status, onRotated.text).toBe(200);
    expect(secretBox(parseMfaKey(NEW)!).open(await sealedOf(u.userId), u.userId)).toBe(enrol.body.secret);

    const v = await registerAndLogin(old.call);
    const pending = await old.call('POST', '/users/me/mfa/totp', { token: v.accessToken, body: { currentPassword: PASSWORD } });
    clock.nextStep();
    const lost = await newOnly.call('POST', '/users/me/mfa/totp/confirm', {
      token: (await login(newOnly.call, v.email, PASSWORD)).accessToken,
      body: { code: rfc6238(pending.body.secret, clock.now()) },
    });
    expect(lost.status, lost.text).toBe(409);
    expect(lost.body.code).toBe('mfa_not_enabled');
    const again = await newOnly.call('POST', '/users/me/mfa/totp', {
      token: (await login(newOnly.call, v.email, PASSWORD)).accessToken,
      body: { currentPassword: PASSWORD },
    });
    expect(again.status, again.text).toBe(200);
  });
});
