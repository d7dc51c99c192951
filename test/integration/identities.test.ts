// A user's external identities and the reauthentication of a user without a
// password (docs/api.md "Identities" and "Reauthentication"): listing and
// unlinking identities, the last-sign-in-method rule (also for passkeys), the
// step-up of a passwordless user within and past REAUTH_MAX_AGE_SECONDS (on
// the app's clock, which the tests move), the identities in the export and
// their deletion with the account, and a first password through the mailed
// reset, on both backends.
//
// A passwordless user exists only through an external sign-in. Until the
// upstream sign-in's test helper is available, `externalAccountFixture` makes
// one the way that sign-in leaves it: an account with no password hash and a
// row in user_identities at a provider of identity_providers.
import { randomBytes, randomUUID } from 'node:crypto';
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityProviders, sessions, userIdentities, users } from '../../src/db/schema.js';
import { until } from '../helpers/eventually.js';
import { login, loginAdmin, PASSWORD, registerAndLogin, type Res, type Session } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { TestSmtp, tokenFrom } from '../helpers/smtp.js';
import { rfc6238 } from '../helpers/totp.js';
import { useTestApp } from '../helpers/use-app.js';
import { SoftAuthenticator } from '../helpers/webauthn.js';

const ORIGIN = 'http://localhost:3000';
const FAST_MAIL = { pollMs: 50, baseBackoffMs: 50, maxBackoffMs: 200 };
const NEW_PASSWORD = 'a-First-password-of-mine-93';
const REAUTH_MAX_AGE_MS = 300_000;
const STEP_MS = 30_000;

type Identity = { id: string; provider: string; providerName: string; email: string | null; linkedAt: string; lastUsedAt: string | null };

const claimsOf = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString());

function expectProblem(res: Res, status: number, code: string, label = code) {
  expect(res.status, `${label}: ${res.text}`).toBe(status);
  expect(res.body.code, label).toBe(code);
}

/** A clock the tests move: real time plus a skew. */
function movableClock() {
  let skew = 0;
  return {
    now: () => Date.now() + skew,
    advance(ms: number) {
      skew += ms;
    },
  };
}

for (const backend of BACKENDS) {
  describe(`identities and reauthentication on ${backend}`, () => {
    const smtp = new TestSmtp();
    beforeAll(() => smtp.start());
    afterAll(() => smtp.stop());
    const clock = movableClock();
    const app = useTestApp(backend, () => ({
      clock: clock.now,
      overrides: { PUBLIC_URL: ORIGIN, SMTP_URL: smtp.url, MAIL_PER_ADDRESS_PER_HOUR: '100' },
      app: { mail: FAST_MAIL },
    }));
    const { call } = app;
    const db = () => app.database.db;

    /** A provider row as the identity-provider administration leaves it. */
    async function provider(opts: { enabled?: boolean; name?: string } = {}): Promise<string> {
      const id = `idp-${randomBytes(4).toString('hex')}`;
      await db()
        .insert(identityProviders)
        .values({
          id,
          type: 'oidc',
          name: opts.name ?? 'Example ID',
          issuer: 'http://127.0.0.1:9/issuer',
          clientId: 'auth-system',
          enabled: opts.enabled ?? true,
        });
      return id;
    }

    /** A link as the external sign-in leaves it: (provider, subject), and the address the provider gave. */
    async function linkIdentity(userId: string, providerId: string, email: string | null): Promise<string> {
      const [row] = await db()
        .insert(userIdentities)
        .values({ userId, providerId, subject: randomUUID(), email, linkedAt: new Date(clock.now()) })
        .returning({ id: userIdentities.id });
      return row!.id;
    }

    /**
     * An account made by a first sign-in at a provider: no password, one
     * identity; `s` is a session signed in just now (made by a password
     * sign-in before the password hash is removed, as the external sign-in is
     * not available to this suite yet).
     */
    async function externalAccountFixture(): Promise<Session & { identityId: string; providerId: string }> {
      const s = await registerAndLogin(call);
      const providerId = await provider();
      const identityId = await linkIdentity(s.userId, providerId, `${s.email.split('@')[0]}@idp.example`);
      await db().update(users).set({ passwordHash: null }).where(eq(users.id, s.userId));
      return { ...s, identityId, providerId };
    }

    const identities = async (s: Session): Promise<Identity[]> => {
      const res = await call('GET', '/users/me/identities', { token: s.accessToken });
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get('cache-control')).toContain('no-store');
      return res.body.items;
    };
    const unlink = (s: Session, id: string, body: object | null = {}) =>
      call('DELETE', `/users/me/identities/${id}`, { token: s.accessToken, ...(body ? { body } : {}) });

    const mailSaying = (email: string, words: string) =>
      until(`a mail to ${email} saying “${words}”`, () => smtp.to(email).find((m) => m.text.includes(words)));

    /** A passkey for the user (after the step-up in `stepUp`), and the device holding it. */
    async function addPasskey(s: Session, stepUp: object = {}) {
      const options = await call('POST', '/users/me/passkeys/options', { token: s.accessToken, body: stepUp });
      expect(options.status, options.text).toBe(200);
      const device = new SoftAuthenticator({ origin: ORIGIN });
      const res = await call('POST', '/users/me/passkeys', {
        token: s.accessToken,
        body: { name: 'Phone', response: device.register(options.body) },
      });
      expect(res.status, res.text).toBe(201);
      return { device, passkeyId: res.body.id as string };
    }

    /** A passwordless sign-in with the device's passkey: a new session, signed in now. */
    async function signInWithPasskey(device: SoftAuthenticator): Promise<Session> {
      const options = await call('POST', '/auth/passkey/options', { body: {} });
      expect(options.status, options.text).toBe(200);
      const res = await call('POST', '/auth/passkey/login', {
        body: { response: device.authenticate(options.body as PublicKeyCredentialRequestOptionsJSON) },
      });
      expect(res.status, res.text).toBe(200);
      const claims = claimsOf(res.body.accessToken);
      return { email: '', userId: claims.sub, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
    }

    describe('GET /users/me/identities', () => {
      it('lists your identities with the provider, its name, the address it gave and the dates; nobody else’s', async () => {
        const s = await externalAccountFixture();
        const listed = await identities(s);
        expect(listed).toEqual([
          {
            id: s.identityId,
            provider: s.providerId,
            providerName: 'Example ID',
            email: expect.stringMatching(/@idp\.example$/),
            linkedAt: expect.any(String),
            lastUsedAt: null,
          },
        ]);
        expect(Object.keys(listed[0]!)).not.toContain('subject');
        const other = await registerAndLogin(call);
        expect(await identities(other)).toEqual([]);
        expect((await call('GET', '/users/me/identities')).status).toBe(401);
      });
    });

    describe('DELETE /users/me/identities/:id', () => {
      it('unlinks an identity of a user with a password after the password check: gone from the list, the owner mailed, the audit log told', async () => {
        const s = await registerAndLogin(call);
        const providerId = await provider({ name: 'Corporate SSO' });
        const id = await linkIdentity(s.userId, providerId, 'ann@corp.example');
        // A user with a password gives it, as on every step-up.
        expectProblem(await unlink(s, id, {}), 400, 'validation_failed', 'no currentPassword');
        expectProblem(await unlink(s, id, { currentPassword: 'a-wrong-guess-123' }), 403, 'invalid_credentials');
        expect((await identities(s)).map((i) => i.id)).toEqual([id]);

        const res = await unlink(s, id, { currentPassword: PASSWORD });
        expect(res.status, res.text).toBe(204);
        expect(await identities(s)).toEqual([]);
        const mail = await mailSaying(s.email, 'unlinked');
        expect(mail.text).toContain('Corporate SSO (ann@corp.example)');
        expectProblem(await unlink(s, id, { currentPassword: PASSWORD }), 404, 'not_found', 'unlinked twice');

        const admin = await loginAdmin(call);
        await app.t.services.audit.idle();
        const logs = await call('GET', `/admin/logs?actorId=${s.userId}&action=users.me.identities.unlink&limit=100`, {
          token: admin.accessToken,
        });
        expect(logs.status, logs.text).toBe(200);
        expect(logs.body.items.map((e: { status: number; detail: string | null }) => [e.status, e.detail])).toContainEqual([
          204,
          `identity_unlinked: ${providerId}`,
        ]);
      });

      it('answers 404 not_found for another user’s identity or an unknown id, and the identity stays', async () => {
        const owner = await externalAccountFixture();
        const other = await registerAndLogin(call);
        await linkIdentity(other.userId, owner.providerId, null);
        expectProblem(await unlink(other, owner.identityId, { currentPassword: PASSWORD }), 404, 'not_found', 'another user’s');
        expectProblem(await unlink(other, randomUUID(), { currentPassword: PASSWORD }), 404, 'not_found', 'unknown');
        expectProblem(await unlink(other, 'not-an-id', { currentPassword: PASSWORD }), 400, 'validation_failed', 'not a UUID');
        expect((await identities(owner)).map((i) => i.id)).toEqual([owner.identityId]);
      });

      it('keeps the last way to sign in: 409 last_sign_in_method; an identity at a disabled provider does not count', async () => {
        const s = await externalAccountFixture();
        expectProblem(await unlink(s, s.identityId), 409, 'last_sign_in_method', 'the only identity');
        // One at a disabled provider signs nobody in today.
        const disabled = await linkIdentity(s.userId, await provider({ enabled: false }), null);
        expectProblem(await unlink(s, s.identityId), 409, 'last_sign_in_method', 'the other is at a disabled provider');
        // A second usable identity: either one may go, but not both.
        const second = await linkIdentity(s.userId, await provider(), null);
        expect((await unlink(s, s.identityId)).status).toBe(204);
        expect((await unlink(s, disabled)).status).toBe(204);
        expectProblem(await unlink(s, second), 409, 'last_sign_in_method', 'now the last');
        expect((await identities(s)).map((i) => i.id)).toEqual([second]);
      });

      it('keeps the last passkey of an account with no password and no identity: 409 last_sign_in_method, and it still signs in', async () => {
        const s = await externalAccountFixture();
        const { device, passkeyId } = await addPasskey(s);
        // The passkey is a way to sign in: the identity may go now.
        expect((await unlink(s, s.identityId)).status).toBe(204);
        const removal = await call('DELETE', `/users/me/passkeys/${passkeyId}`, { token: s.accessToken, body: {} });
        expectProblem(removal, 409, 'last_sign_in_method', 'the last passkey');
        const again = await signInWithPasskey(device);
        expect(again.userId).toBe(s.userId);
      });
    });

    describe('reauthentication of a user without a password', () => {
      it('passes the step-up with a sign-in less than REAUTH_MAX_AGE_SECONDS old, is refused 403 reauthentication_required after, and passes again after a new sign-in', async () => {
        const s = await externalAccountFixture();
        const second = await linkIdentity(s.userId, await provider(), null);
        // Fresh: adding a passkey needs no password.
        const { device } = await addPasskey(s);
        clock.advance(REAUTH_MAX_AGE_MS + 1_000);
        // The same session, now too old: every step-up route says to sign in again.
        expectProblem(await unlink(s, second), 403, 'reauthentication_required', 'unlink');
        expectProblem(
          await call('POST', '/users/me/passkeys/options', { token: s.accessToken, body: {} }),
          403,
          'reauthentication_required',
          'passkey options',
        );
        expectProblem(
          await call('PUT', '/users/me', { token: s.accessToken, body: { password: NEW_PASSWORD } }),
          403,
          'reauthentication_required',
          'a first password',
        );
        expectProblem(await call('DELETE', '/users/me', { token: s.accessToken, body: {} }), 403, 'reauthentication_required', 'deletion');
        expectProblem(
          await call('POST', '/users/me/mfa/totp', { token: s.accessToken, body: {} }),
          403,
          'reauthentication_required',
          'TOTP enrolment',
        );
        expect((await identities(s)).map((i) => i.id)).toContain(second);
        // Signed in again (here with the passkey): the step-up passes on the new session.
        const again = await signInWithPasskey(device);
        expect((await unlink(again, second)).status).toBe(204);
      });

      it('sets a first password with PUT /users/me after a recent sign-in, and then signs in with it', async () => {
        const s = await externalAccountFixture();
        const res = await call('PUT', '/users/me', { token: s.accessToken, body: { password: NEW_PASSWORD } });
        expect(res.status, res.text).toBe(200);
        const signedIn = await login(call, s.email, NEW_PASSWORD);
        expect(signedIn.userId).toBe(s.userId);
        // From now on the password is what a step-up asks for.
        expectProblem(await unlink(signedIn, s.identityId), 400, 'validation_failed', 'no currentPassword now');
        expect((await unlink(signedIn, s.identityId, { currentPassword: NEW_PASSWORD })).status).toBe(204);
      });

      it('with TOTP on, asks a code of a sign-in without a second factor, not of one that had the MFA step', async () => {
        const s = await externalAccountFixture();
        const enrol = await call('POST', '/users/me/mfa/totp', { token: s.accessToken, body: {} });
        expect(enrol.status, enrol.text).toBe(200);
        const confirm = await call('POST', '/users/me/mfa/totp/confirm', {
          token: s.accessToken,
          body: { code: rfc6238(enrol.body.secret, clock.now()) },
        });
        expect(confirm.status, confirm.text).toBe(200);
        const regenerate = (body: object) => call('POST', '/users/me/mfa/recovery-codes', { token: s.accessToken, body });
        // This session's sign-in had no second factor: a code is asked, as of a user with a password.
        expectProblem(await regenerate({}), 403, 'mfa_code_required');
        expectProblem(await regenerate({ code: '000000' }), 403, 'invalid_mfa_code');
        clock.advance(STEP_MS);
        const withCode = await regenerate({ code: rfc6238(enrol.body.secret, clock.now()) });
        expect(withCode.status, withCode.text).toBe(200);
        // A sign-in at the provider followed by the MFA step (its session's amr): no code again.
        await db()
          .update(sessions)
          .set({ amr: 'fed,otp' })
          .where(eq(sessions.id, claimsOf(s.accessToken).sid));
        expect((await regenerate({})).status).toBe(200);
      });

      it('gets a password through POST /auth/password/forgot and the mailed link, and then signs in with it', async () => {
        const s = await externalAccountFixture();
        expect((await call('POST', '/auth/password/forgot', { body: { email: s.email } })).status).toBe(202);
        const mail = await until('the reset mail', () => smtp.to(s.email).find((m) => m.text.includes('/reset-password#token=')));
        const reset = await call('POST', '/auth/password/reset', { body: { token: tokenFrom(mail), password: NEW_PASSWORD } });
        expect(reset.status, reset.text).toBe(204);
        const signedIn = await login(call, s.email, NEW_PASSWORD);
        expect(signedIn.userId).toBe(s.userId);
        // The identity still signs in beside it, and is now not the last method.
        expect((await unlink(signedIn, s.identityId, { currentPassword: NEW_PASSWORD })).status).toBe(204);
      });
    });

    describe('the account export and deletion', () => {
      it('exports the identities (provider, address, dates; no subject or token) and deletes them with the account', async () => {
        const s = await externalAccountFixture();
        const exported = await call('GET', '/users/me/export', { token: s.accessToken });
        expect(exported.status, exported.text).toBe(200);
        expect(exported.body.identities).toEqual([
          { provider: s.providerId, email: expect.stringMatching(/@idp\.example$/), linkedAt: expect.any(String), lastUsedAt: null },
        ]);
        // A recent sign-in stands for the password it does not have.
        const gone = await call('DELETE', '/users/me', { token: s.accessToken, body: {} });
        expect(gone.status, gone.text).toBe(204);
        expect(await db().select().from(userIdentities).where(eq(userIdentities.userId, s.userId))).toEqual([]);
        expect(await db().select().from(userIdentities).where(eq(userIdentities.id, s.identityId))).toEqual([]);
      });
    });
  });
}
