// Passkeys (docs/api.md "Second factors (MFA)", passkeys and the MFA step):
// registering one, signing in with it alone or as the second factor after the
// password, the email-bound options and their decoys, removing one, and what
// the audit log keeps, on both backends; then a ceremony started on one
// instance and finished on another. The credentials come from a software
// authenticator that writes the real protocol bytes, so the service's own
// verification decides every case.
import { randomBytes } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/eventually.js';
import { login, loginAdmin, PASSWORD, registerAndLogin, uniqueEmail, type Call, type Res, type Session } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { TestSmtp, tokenFrom } from '../helpers/smtp.js';
import { rfc6238 } from '../helpers/totp.js';
import { useTestApp } from '../helpers/use-app.js';
import { useTwoInstances } from '../helpers/two-instances.js';
import { type AuthenticateTamper, type RegisterTamper, SoftAuthenticator } from '../helpers/webauthn.js';

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';
const NEW_PASSWORD = 'another-Long-passphrase-77';
const FAST_MAIL = { pollMs: 50, baseBackoffMs: 50, maxBackoffMs: 200 };

type Passkey = { id: string; name: string; createdAt: string; lastUsedAt: string | null };
type LogEntry = { actorId: string | null; action: string; status: number; detail: string | null };
/** A user with one passkey, and the device that holds it. */
type Enrolled = Session & { device: SoftAuthenticator; credentialId: string; passkeyId: string };

const claimsOf = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString());
const madeUpChallenge = () => randomBytes(32).toString('base64url');
/** The WebAuthn user handle of a user id: its 16 bytes, base64url. */
const handleOf = (userId: string) => Buffer.from(userId.replace(/-/g, ''), 'hex').toString('base64url');
const newDevice = () => new SoftAuthenticator({ origin: ORIGIN });
const idsOf = (options: PublicKeyCredentialRequestOptionsJSON) => (options.allowCredentials ?? []).map((c) => c.id);

/** Refused with this problem, and no token pair in the answer. */
function expectProblem(res: Res, status: number, code: string, label = code) {
  expect(res.status, `${label}: ${res.text}`).toBe(status);
  expect(res.body.code, label).toBe(code);
  expect(res.body.accessToken, label).toBeUndefined();
  expect(res.body.refreshToken, label).toBeUndefined();
}

/** A token pair of this user, carrying these authentication methods, that works on GET /users/me. */
async function expectSignedIn(call: Call, res: Res, userId: string, amr: string[]) {
  expect(res.status, res.text).toBe(200);
  expect(res.body).toMatchObject({ accessToken: expect.any(String), refreshToken: expect.any(String), tokenType: 'Bearer' });
  expect(res.headers.get('cache-control')).toContain('no-store');
  const claims = claimsOf(res.body.accessToken);
  expect(claims.sub).toBe(userId);
  expect(claims.amr).toEqual(amr);
  const me = await call('GET', '/users/me', { token: res.body.accessToken });
  expect(me.status, me.text).toBe(200);
  expect(me.body.id).toBe(userId);
}

/** The step-up that adding or removing a passkey needs: the current password (and a code with TOTP on). */
type StepUp = { currentPassword?: string; code?: string };
const STEP_UP: StepUp = { currentPassword: PASSWORD };

async function creationOptions(call: Call, s: Session, stepUp: StepUp = STEP_UP): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const res = await call('POST', '/users/me/passkeys/options', { token: s.accessToken, body: stepUp });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

const postPasskey = (call: Call, s: Session, response: RegistrationResponseJSON, name = 'Laptop', extra: object = {}) =>
  call('POST', '/users/me/passkeys', { token: s.accessToken, body: { name, response, ...extra } });

/** DELETE /users/me/passkeys/:id with this step-up (null: no body at all). */
const deletePasskey = (call: Call, s: Session, id: string, stepUp: StepUp | null = STEP_UP) =>
  call('DELETE', `/users/me/passkeys/${id}`, { token: s.accessToken, ...(stepUp ? { body: stepUp } : {}) });

/** Registers a new passkey of `device` for the user. */
async function enrol(call: Call, s: Session, device = newDevice(), name = 'Laptop', stepUp: StepUp = STEP_UP) {
  const response = device.register(await creationOptions(call, s, stepUp));
  const res = await postPasskey(call, s, response, name);
  expect(res.status, res.text).toBe(201);
  return { device, response, credentialId: response.id, passkey: res.body as Passkey };
}

async function userWithPasskey(call: Call): Promise<Enrolled> {
  const s = await registerAndLogin(call);
  const { device, credentialId, passkey } = await enrol(call, s);
  return { ...s, device, credentialId, passkeyId: passkey.id };
}

async function requestOptions(
  call: Call,
  body: { email?: string } | { mfaToken: string } = {},
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const res = await call('POST', '/auth/passkey/options', { body });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

const passkeyLogin = (call: Call, response: AuthenticationResponseJSON) => call('POST', '/auth/passkey/login', { body: { response } });

/** A passwordless sign-in with whatever passkey the device holds (fresh options each time). */
async function signInWith(call: Call, device: SoftAuthenticator, tamper?: AuthenticateTamper) {
  return passkeyLogin(call, device.authenticate(await requestOptions(call), tamper));
}

async function passkeyCount(call: Call, s: Session): Promise<number> {
  const me = await call('GET', '/users/me', { token: s.accessToken });
  expect(me.status, me.text).toBe(200);
  return me.body.mfa.passkeys;
}

async function listed(call: Call, s: Session): Promise<Passkey[]> {
  const res = await call('GET', '/users/me/passkeys', { token: s.accessToken });
  expect(res.status, res.text).toBe(200);
  return res.body.items;
}

/** The right password of a user with a second factor: the MFA step, not tokens. */
async function mfaStep(call: Call, email: string): Promise<{ mfaToken: string; methods: string[] }> {
  const res = await call('POST', '/auth/login', { body: { email, password: PASSWORD } });
  expectProblem(res, 401, 'mfa_required');
  expect(res.body.mfaToken).toEqual(expect.any(String));
  return res.body;
}

const verifyPasskey = (call: Call, mfaToken: string, passkey: AuthenticationResponseJSON) =>
  call('POST', '/auth/mfa/verify', { body: { mfaToken, passkey } });

for (const backend of BACKENDS) {
  describe(`passkeys on ${backend}`, () => {
    const smtp = new TestSmtp();
    beforeAll(() => smtp.start());
    afterAll(() => smtp.stop());
    const app = useTestApp(backend, () => ({
      overrides: { PUBLIC_URL: ORIGIN, SMTP_URL: smtp.url, MAIL_PER_ADDRESS_PER_HOUR: '100' },
      app: { mail: FAST_MAIL },
    }));
    const { call } = app;

    /** TOTP on (through the API); returns the recovery codes, which are codes for the step-up too. */
    async function enableTotp(s: Session): Promise<string[]> {
      const enrol = await call('POST', '/users/me/mfa/totp', { token: s.accessToken, body: { currentPassword: PASSWORD } });
      expect(enrol.status, enrol.text).toBe(200);
      const confirm = await call('POST', '/users/me/mfa/totp/confirm', {
        token: s.accessToken,
        body: { code: rfc6238(enrol.body.secret, Date.now()) },
      });
      expect(confirm.status, confirm.text).toBe(200);
      return confirm.body.recoveryCodes;
    }

    /** The mail to this address whose text says this, once the outbox has sent it. */
    const mailSaying = (email: string, words: string) =>
      until(`a mail to ${email} saying “${words}”`, () => smtp.to(email).find((m) => m.text.includes(words)));

    describe('registering a passkey', () => {
      it('offers creation options for your account and keeps the passkey answering them: listed, counted, excluded next time', async () => {
        const s = await registerAndLogin(call);
        expect((await call('POST', '/users/me/passkeys/options')).status).toBe(401);
        const options = await creationOptions(call, s);
        expect(options.challenge).toMatch(/^[A-Za-z0-9_-]{16,}$/);
        expect(options.rp.id).toBe(RP_ID);
        expect(options.user).toMatchObject({ id: handleOf(s.userId), name: s.email });
        expect(options.excludeCredentials ?? []).toEqual([]);
        expect(options.authenticatorSelection).toMatchObject({ residentKey: 'preferred', userVerification: 'preferred' });

        const device = newDevice();
        const response = device.register(options);
        const before = Date.now();
        const res = await postPasskey(call, s, response, 'Work laptop');
        expect(res.status, res.text).toBe(201);
        expect(Object.keys(res.body).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name']);
        expect(res.body).toMatchObject({ name: 'Work laptop', lastUsedAt: null });
        expect(new Date(res.body.createdAt).toISOString()).toBe(res.body.createdAt);
        expect(Date.parse(res.body.createdAt)).toBeGreaterThanOrEqual(before - 1_000);
        expect(await passkeyCount(call, s)).toBe(1);
        expect(await listed(call, s)).toEqual([res.body]);

        const next = await creationOptions(call, s);
        expect(next.challenge).not.toBe(options.challenge);
        expect((next.excludeCredentials ?? []).map((c) => c.id)).toEqual([response.id]);
        // The device sees its own credential excluded and does not register twice.
        expect(() => device.register(next)).toThrow('InvalidStateError');
      });

      it.each<[string, RegisterTamper]>([
        ['from another origin', { origin: 'https://evil.example' }],
        ['from another port of the same host', { origin: 'http://localhost:4000' }],
        ['for another relying party', { rpId: 'evil.example' }],
        ['answering a made-up challenge', { challenge: madeUpChallenge() }],
      ])('refuses a registration %s (400 invalid_passkey) and adds no passkey', async (label, tamper) => {
        const s = await registerAndLogin(call);
        const res = await postPasskey(call, s, newDevice().register(await creationOptions(call, s), tamper));
        expectProblem(res, 400, 'invalid_passkey', label);
        expect(await passkeyCount(call, s)).toBe(0);
        expect(await listed(call, s)).toEqual([]);
      });

      it('answers a registration challenge once: the same response posted again is refused and adds nothing', async () => {
        const s = await registerAndLogin(call);
        const response = newDevice().register(await creationOptions(call, s));
        expect((await postPasskey(call, s, response)).status).toBe(201);
        expectProblem(await postPasskey(call, s, response, 'Again'), 400, 'invalid_passkey');
        expect(await passkeyCount(call, s)).toBe(1);
        expect((await listed(call, s)).map((p) => p.name)).toEqual(['Laptop']);
      });

      it('answers a registration challenge once, whoever answers it: a second device answering the same options is refused', async () => {
        const s = await registerAndLogin(call);
        const options = await creationOptions(call, s);
        expect((await postPasskey(call, s, newDevice().register(options), 'First')).status).toBe(201);
        expectProblem(await postPasskey(call, s, newDevice().register(options), 'Second'), 400, 'invalid_passkey');
        expect((await listed(call, s)).map((p) => p.name)).toEqual(['First']);
      });

      it('refuses a registration answering a challenge that was issued to another user', async () => {
        const s = await registerAndLogin(call);
        const other = await registerAndLogin(call);
        const theirs = await creationOptions(call, other);
        expectProblem(await postPasskey(call, s, newDevice().register(theirs)), 400, 'invalid_passkey');
        expect(await passkeyCount(call, s)).toBe(0);
        expect(await passkeyCount(call, other)).toBe(0);
      });
      it('refuses a passkey whose credential id another account already registered; that passkey still signs in its owner only', async () => {
        const victim = await userWithPasskey(call);
        const mallory = await registerAndLogin(call);
        const copy = newDevice().register(await creationOptions(call, mallory), { credentialId: victim.credentialId });
        expect(copy.id).toBe(victim.credentialId);
        expectProblem(await postPasskey(call, mallory, copy), 400, 'invalid_passkey');
        expect(await passkeyCount(call, mallory)).toBe(0);
        await expectSignedIn(call, await signInWith(call, victim.device), victim.userId, ['hwk']);
      });
      it("takes what a browser's toJSON() adds: the members WebAuthn defines typed and checked, others dropped", async () => {
        const s = await registerAndLogin(call);
        const plain = newDevice().register(await creationOptions(call, s));
        const withExtras = (response: object, extensions: object) =>
          ({
            ...plain,
            response: { ...plain.response, ...response },
            clientExtensionResults: extensions,
          }) as unknown as RegistrationResponseJSON;
        const browserAdds = { authenticatorData: 'AAAA', publicKeyAlgorithm: -7, publicKey: 'MFkwEwYHKoZIzj0CAQ' };
        // A defined member of the wrong type is refused before the challenge is used...
        for (const [response, extensions, path] of [
          [{ ...browserAdds, publicKeyAlgorithm: 'ES256' }, {}, 'response.response.publicKeyAlgorithm'],
          [browserAdds, { credProps: 'yes' }, 'response.clientExtensionResults.credProps'],
          [browserAdds, { prf: { results: { first: 42 } } }, 'response.clientExtensionResults.prf.results.first'],
          [browserAdds, { largeBlob: { blob: 'not base64url!' } }, 'response.clientExtensionResults.largeBlob.blob'],
        ] as const) {
          const res = await postPasskey(call, s, withExtras(response, extensions));
          expectProblem(res, 400, 'validation_failed', path);
          expect(
            res.body.errors.map((e: { path: string }) => e.path),
            path,
          ).toContain(path);
        }
        expect(await passkeyCount(call, s)).toBe(0);
        // ...and members nobody defined (a newer browser's) are dropped: the passkey is added.
        const res = await postPasskey(
          call,
          s,
          withExtras(
            { ...browserAdds, somethingNew: [[[1]]] },
            { credProps: { rk: true }, prf: { enabled: false }, hmacCreateSecret: false, futureExtension: { x: [{}] } },
          ),
        );
        expect(res.status, res.text).toBe(201);
        expect(await passkeyCount(call, s)).toBe(1);
      });
    });

    describe('passwordless sign-in', () => {
      it('signs in with a passkey alone: tokens with amr ["hwk"] that work, and the passkey shows when it was last used', async () => {
        const u = await userWithPasskey(call);
        const options = await requestOptions(call);
        expect(options.rpId).toBe(RP_ID);
        expect(options.challenge).toMatch(/^[A-Za-z0-9_-]{16,}$/);
        expect(idsOf(options)).toEqual([]);
        const before = Date.now();
        const res = await passkeyLogin(call, u.device.authenticate(options));
        await expectSignedIn(call, res, u.userId, ['hwk']);
        const [used] = await listed(call, u);
        expect(used!.lastUsedAt).not.toBeNull();
        expect(Date.parse(used!.lastUsedAt!)).toBeGreaterThanOrEqual(before - 1_000);
        expect(Date.parse(used!.lastUsedAt!)).toBeLessThanOrEqual(Date.now());
      });

      it('asks the device to verify the user for a passwordless sign-in (which needs it), and only prefers it in the MFA step', async () => {
        const u = await userWithPasskey(call);
        const { mfaToken } = await mfaStep(call, u.email);
        expect((await requestOptions(call, { mfaToken })).userVerification).toBe('preferred');
        expect((await requestOptions(call)).userVerification).toBe('required');
        expect((await requestOptions(call, { email: u.email })).userVerification).toBe('required');
      });

      it("takes what a browser's toJSON() adds to an assertion: defined members typed and checked, others dropped", async () => {
        const u = await userWithPasskey(call);
        const plain = u.device.authenticate(await requestOptions(call));
        const withExtras = (response: object, extensions: object) =>
          ({
            ...plain,
            response: { ...plain.response, ...response },
            clientExtensionResults: extensions,
          }) as unknown as AuthenticationResponseJSON;
        for (const [response, extensions, path] of [
          [{ attestationObject: 42 }, {}, 'response.response.attestationObject'],
          [{}, { appid: 'true' }, 'response.clientExtensionResults.appid'],
          [{}, { largeBlob: { blob: 'AAAA', written: 'no' } }, 'response.clientExtensionResults.largeBlob.written'],
        ] as const) {
          const res = await passkeyLogin(call, withExtras(response, extensions));
          expectProblem(res, 400, 'validation_failed', path);
          expect(
            res.body.errors.map((e: { path: string }) => e.path),
            path,
          ).toContain(path);
        }
        const res = await passkeyLogin(
          call,
          withExtras(
            { somethingNew: { a: [1] } },
            { largeBlob: { blob: 'AAAA' }, prf: { results: { first: 'AAAA' } }, futureExtension: 1 },
          ),
        );
        await expectSignedIn(call, res, u.userId, ['hwk']);
      });

      it('refuses the same assertion a second time', async () => {
        const u = await userWithPasskey(call);
        const response = u.device.authenticate(await requestOptions(call));
        expect((await passkeyLogin(call, response)).status).toBe(200);
        expectProblem(await passkeyLogin(call, response), 401, 'invalid_passkey');
      });

      it('answers a sign-in challenge once: a new signature over the same challenge is refused', async () => {
        const u = await userWithPasskey(call);
        const options = await requestOptions(call);
        await expectSignedIn(call, await passkeyLogin(call, u.device.authenticate(options)), u.userId, ['hwk']);
        // A fresh assertion (its counter moved on), answering the spent challenge.
        expectProblem(await passkeyLogin(call, u.device.authenticate(options)), 401, 'invalid_passkey');
      });

      it('refuses a signature counter that went backwards or stood still, as a cloned device’s would; the real one counts on', async () => {
        const u = await userWithPasskey(call);
        expect((await signInWith(call, u.device)).status).toBe(200); // counter 1
        expect((await signInWith(call, u.device)).status).toBe(200); // counter 2
        for (const counter of [1, 2])
          expectProblem(await signInWith(call, u.device, { counter }), 401, 'invalid_passkey', `counter ${counter}`);
        await expectSignedIn(call, await signInWith(call, u.device), u.userId, ['hwk']); // counter 3
      });

      it.each<[string, AuthenticateTamper]>([
        ['signed by another key', { signWith: 'wrong-key' }],
        ['from another origin', { origin: 'https://evil.example' }],
        ['for another relying party', { rpId: 'evil.example' }],
        ['without user verification on the device', { userVerified: false }],
        ['answering a made-up challenge', { challenge: madeUpChallenge() }],
      ])('refuses an assertion %s (401 invalid_passkey); the passkey still signs in properly', async (label, tamper) => {
        const u = await userWithPasskey(call);
        expectProblem(await signInWith(call, u.device, tamper), 401, 'invalid_passkey', label);
        await expectSignedIn(call, await signInWith(call, u.device), u.userId, ['hwk']);
      });

      it('refuses a credential it never registered, even one carrying the user’s handle', async () => {
        const u = await userWithPasskey(call);
        const stranger = newDevice();
        stranger.register(await creationOptions(call, u)); // created on the device, never sent to the service
        expect(stranger.credentials[0]!.userHandle).toBe(handleOf(u.userId));
        expectProblem(await signInWith(call, stranger), 401, 'invalid_passkey');
      });

      it('refuses a challenge issued for an MFA step', async () => {
        const u = await userWithPasskey(call);
        const { mfaToken } = await mfaStep(call, u.email);
        const response = u.device.authenticate(await requestOptions(call, { mfaToken }));
        expectProblem(await passkeyLogin(call, response), 401, 'invalid_passkey');
      });
    });

    describe('options for an email address', () => {
      it('lists exactly the passkeys of an address that has some, and they sign that account in', async () => {
        const u = await userWithPasskey(call);
        const phone = await enrol(call, u, newDevice(), 'Phone');
        await userWithPasskey(call); // someone else's passkey is not listed
        const options = await requestOptions(call, { email: u.email });
        expect(idsOf(options).sort()).toEqual([u.credentialId, phone.credentialId].sort());
        await expectSignedIn(call, await passkeyLogin(call, phone.device.authenticate(options)), u.userId, ['hwk']);
      });

      it('answers an unknown address and an account without passkeys alike: one decoy, the same each time, different per address', async () => {
        const without = (await registerAndLogin(call)).email;
        const unknown = uniqueEmail('nobody');
        const decoyOf = async (email: string) => {
          const options = await requestOptions(call, { email });
          expect(idsOf(options), email).toHaveLength(1);
          return { id: idsOf(options)[0]!, challenge: options.challenge };
        };
        const [u1, u2, w1, w2, other] = [
          await decoyOf(unknown),
          await decoyOf(unknown),
          await decoyOf(without),
          await decoyOf(without),
          await decoyOf(uniqueEmail('nobody')),
        ];
        expect(u2.id).toBe(u1.id);
        expect(w2.id).toBe(w1.id);
        expect(new Set([u1.id, w1.id, other.id]).size).toBe(3);
        expect(u2.challenge).not.toBe(u1.challenge);
      });
      it('shapes a decoy like a real entry, so nothing but its id tells that the account has no passkey', async () => {
        const u = await userWithPasskey(call);
        const [real] = (await requestOptions(call, { email: u.email })).allowCredentials ?? [];
        const [decoy] = (await requestOptions(call, { email: uniqueEmail('nobody') })).allowCredentials ?? [];
        expect(real!.id).toBe(u.credentialId);
        expect({ ...decoy, id: 'x' }).toEqual({ ...real, id: 'x' });
      });
    });

    describe('a passkey as the second factor', () => {
      it('asks for the passkey after the password and signs in with it (amr ["pwd","hwk"]); the mfaToken is then spent', async () => {
        const u = await userWithPasskey(call);
        const { mfaToken, methods } = await mfaStep(call, u.email);
        expect(methods).toContain('passkey');
        const options = await requestOptions(call, { mfaToken });
        expect(idsOf(options)).toEqual([u.credentialId]);
        const answer = u.device.authenticate(options);
        await expectSignedIn(call, await verifyPasskey(call, mfaToken, answer), u.userId, ['pwd', 'hwk']);
        expectProblem(await verifyPasskey(call, mfaToken, answer), 401, 'invalid_mfa_token');
        expectProblem(await call('POST', '/auth/passkey/options', { body: { mfaToken } }), 401, 'invalid_mfa_token');
      });

      it('refuses another user’s passkey answering this user’s MFA challenge; the user’s own passkey still finishes the step', async () => {
        const u = await userWithPasskey(call);
        const mallory = await userWithPasskey(call);
        const { mfaToken } = await mfaStep(call, u.email);
        const forged = mallory.device.authenticate(await requestOptions(call, { mfaToken }), { credentialId: mallory.credentialId });
        expectProblem(await verifyPasskey(call, mfaToken, forged), 401, 'invalid_passkey');
        const own = u.device.authenticate(await requestOptions(call, { mfaToken }));
        await expectSignedIn(call, await verifyPasskey(call, mfaToken, own), u.userId, ['pwd', 'hwk']);
      });

      it('refuses, in the MFA step, an assertion answering a passwordless sign-in’s challenge', async () => {
        const u = await userWithPasskey(call);
        const { mfaToken } = await mfaStep(call, u.email);
        expectProblem(await verifyPasskey(call, mfaToken, u.device.authenticate(await requestOptions(call))), 401, 'invalid_passkey');
      });

      it('kills the mfaToken after 5 wrong passkey answers: then even the right passkey or a right code gets 401 invalid_mfa_token', async () => {
        const u = await userWithPasskey(call);
        const codes = await call('POST', '/users/me/mfa/recovery-codes', { token: u.accessToken, body: { currentPassword: PASSWORD } });
        expect(codes.status, codes.text).toBe(200);
        const { mfaToken } = await mfaStep(call, u.email);
        const wrongAnswer = async () => u.device.authenticate(await requestOptions(call, { mfaToken }), { signWith: 'wrong-key' });
        for (let i = 1; i <= 4; i++)
          expectProblem(await verifyPasskey(call, mfaToken, await wrongAnswer()), 401, 'invalid_passkey', `wrong ${i}`);
        // Still alive after four: options are given. The fifth wrong answer kills it.
        const right = u.device.authenticate(await requestOptions(call, { mfaToken }));
        expectProblem(await verifyPasskey(call, mfaToken, await wrongAnswer()), 401, 'invalid_passkey', 'wrong 5');
        expectProblem(await verifyPasskey(call, mfaToken, right), 401, 'invalid_mfa_token', 'the right passkey');
        const code = await call('POST', '/auth/mfa/verify', { body: { mfaToken, code: codes.body.recoveryCodes[0] } });
        expectProblem(code, 401, 'invalid_mfa_token', 'a right recovery code');
        expectProblem(await call('POST', '/auth/passkey/options', { body: { mfaToken } }), 401, 'invalid_mfa_token', 'options');
      });

      it('binds the MFA step’s challenge to its mfaToken: answered in another step of the same user, it is refused', async () => {
        const u = await userWithPasskey(call);
        const a = await mfaStep(call, u.email);
        const b = await mfaStep(call, u.email);
        const forA = u.device.authenticate(await requestOptions(call, { mfaToken: a.mfaToken }));
        expectProblem(await verifyPasskey(call, b.mfaToken, forA), 401, 'invalid_passkey');
        const forB = u.device.authenticate(await requestOptions(call, { mfaToken: b.mfaToken }));
        await expectSignedIn(call, await verifyPasskey(call, b.mfaToken, forB), u.userId, ['pwd', 'hwk']);
      });

      it('gives no passkey options for a made-up mfaToken', async () => {
        const res = await call('POST', '/auth/passkey/options', { body: { mfaToken: randomBytes(32).toString('base64url') } });
        expectProblem(res, 401, 'invalid_mfa_token');
      });
    });

    describe('removing a passkey', () => {
      it('removes one of your passkeys (then 404); the password alone signs in again and the removed passkey no longer does', async () => {
        const u = await userWithPasskey(call);
        const other = await userWithPasskey(call);
        const theirs = await deletePasskey(call, u, other.passkeyId);
        expectProblem(theirs, 404, 'passkey_not_found');
        expect((await listed(call, other)).map((p) => p.id)).toEqual([other.passkeyId]);

        const res = await deletePasskey(call, u, u.passkeyId);
        expect(res.status, res.text).toBe(204);
        expectProblem(await deletePasskey(call, u, u.passkeyId), 404, 'passkey_not_found');
        expect(await passkeyCount(call, u)).toBe(0);
        expect(await listed(call, u)).toEqual([]);

        const password = await call('POST', '/auth/login', { body: { email: u.email, password: PASSWORD } });
        await expectSignedIn(call, password, u.userId, ['pwd']);
        expectProblem(await signInWith(call, u.device), 401, 'invalid_passkey');
        await expectSignedIn(call, await signInWith(call, other.device), other.userId, ['hwk']);
      });
    });

    describe('an admin’s MFA reset', () => {
      it('removes every passkey of the user: none signs in any more (401 invalid_passkey), none is listed; other users’ go on', async () => {
        const admin = await loginAdmin(call);
        const u = await userWithPasskey(call);
        const phone = await enrol(call, u, newDevice(), 'Phone');
        const other = await userWithPasskey(call);
        await expectSignedIn(call, await signInWith(call, u.device), u.userId, ['hwk']);

        const reset = await call('DELETE', `/users/${u.userId}/mfa`, { token: admin.accessToken });
        expect(reset.status, reset.text).toBe(204);
        expectProblem(await signInWith(call, u.device), 401, 'invalid_passkey');
        expectProblem(await signInWith(call, phone.device), 401, 'invalid_passkey');
        // The password alone signs in now (no second factor is left), and the list is empty.
        const password = await call('POST', '/auth/login', { body: { email: u.email, password: PASSWORD } });
        await expectSignedIn(call, password, u.userId, ['pwd']);
        const fresh = { ...u, accessToken: password.body.accessToken as string };
        expect(await listed(call, fresh)).toEqual([]);
        expect(await passkeyCount(call, fresh)).toBe(0);
        await expectSignedIn(call, await signInWith(call, other.device), other.userId, ['hwk']);
      });
    });

    describe('step-up: an access token alone adds or removes no passkey', () => {
      it('gives registration options only for the current password: none without it or with a wrong one', async () => {
        const s = await registerAndLogin(call);
        // What a stolen access token alone can send: no password, or a guess.
        const bare = await call('POST', '/users/me/passkeys/options', { token: s.accessToken });
        expectProblem(bare, 400, 'validation_failed', 'no body');
        const empty = await call('POST', '/users/me/passkeys/options', { token: s.accessToken, body: {} });
        expectProblem(empty, 400, 'validation_failed', 'no currentPassword');
        expect(empty.body.errors.map((e: { path: string }) => e.path)).toContain('currentPassword');
        const wrong = await call('POST', '/users/me/passkeys/options', {
          token: s.accessToken,
          body: { currentPassword: 'a-wrong-guess-123' },
        });
        expectProblem(wrong, 403, 'invalid_credentials', 'wrong password');
        expect(wrong.body.challenge).toBeUndefined();
        expect(await passkeyCount(call, s)).toBe(0);
        // The owner, who knows the password, adds one.
        const { passkey } = await enrol(call, s);
        expect(await listed(call, s)).toEqual([passkey]);
      });

      it('with TOTP on, asks for a code as well to add or remove a passkey: missing 403 mfa_code_required, wrong 403 invalid_mfa_code', async () => {
        const s = await registerAndLogin(call);
        const codes = await enableTotp(s);
        const options = (body: StepUp) => call('POST', '/users/me/passkeys/options', { token: s.accessToken, body });
        expectProblem(await options({ currentPassword: PASSWORD }), 403, 'mfa_code_required', 'options without a code');
        expectProblem(await options({ currentPassword: PASSWORD, code: '000000' }), 403, 'invalid_mfa_code', 'options, wrong code');
        expectProblem(
          await options({ currentPassword: 'a-wrong-guess-123', code: codes[0]! }),
          403,
          'invalid_credentials',
          'wrong password',
        );
        // The code was not spent on the wrong password: it adds the passkey now.
        const { passkey, device } = await enrol(call, s, newDevice(), 'Laptop', { currentPassword: PASSWORD, code: codes[0]! });

        expectProblem(await deletePasskey(call, s, passkey.id), 403, 'mfa_code_required', 'removal without a code');
        expectProblem(await deletePasskey(call, s, passkey.id, { currentPassword: PASSWORD, code: '000000' }), 403, 'invalid_mfa_code');
        expect(await listed(call, s)).toEqual([passkey]);
        await expectSignedIn(call, await signInWith(call, device), s.userId, ['hwk']);
        expect((await deletePasskey(call, s, passkey.id, { currentPassword: PASSWORD, code: codes[1]! })).status).toBe(204);
        expect(await listed(call, s)).toEqual([]);
      });

      it('removes a passkey only with the current password: refused without it or with a wrong one, and it still signs in', async () => {
        const u = await userWithPasskey(call);
        expectProblem(await deletePasskey(call, u, u.passkeyId, null), 400, 'validation_failed', 'no body');
        expectProblem(await deletePasskey(call, u, u.passkeyId, {}), 400, 'validation_failed', 'no currentPassword');
        expectProblem(await deletePasskey(call, u, u.passkeyId, { currentPassword: 'a-wrong-guess-123' }), 403, 'invalid_credentials');
        expect(await passkeyCount(call, u)).toBe(1);
        await expectSignedIn(call, await signInWith(call, u.device), u.userId, ['hwk']);
        expect((await deletePasskey(call, u, u.passkeyId)).status).toBe(204);
        expectProblem(await signInWith(call, u.device), 401, 'invalid_passkey');
      });
    });

    describe('a password change or reset can remove the passkeys too', () => {
      it('removes every passkey with a password change and removePasskeys: none signs in, orphan recovery codes go, the owner is told', async () => {
        const u = await userWithPasskey(call);
        const phone = await enrol(call, u, newDevice(), 'Phone');
        const codes = await call('POST', '/users/me/mfa/recovery-codes', { token: u.accessToken, body: { currentPassword: PASSWORD } });
        expect(codes.status, codes.text).toBe(200);
        const res = await call('PUT', '/users/me', {
          token: u.accessToken,
          body: { password: NEW_PASSWORD, currentPassword: PASSWORD, removePasskeys: true },
        });
        expect(res.status, res.text).toBe(200);
        expect(res.body.mfa).toEqual({ totp: false, passkeys: 0 });
        expect(await listed(call, u)).toEqual([]);
        expectProblem(await signInWith(call, u.device), 401, 'invalid_passkey', 'laptop');
        expectProblem(await signInWith(call, phone.device), 401, 'invalid_passkey', 'phone');
        // No second factor is left: the new password alone signs in, and the recovery codes went with the passkeys.
        const password = await call('POST', '/auth/login', { body: { email: u.email, password: NEW_PASSWORD } });
        await expectSignedIn(call, password, u.userId, ['pwd']);
        const exported = await call('GET', '/users/me/export', { token: u.accessToken });
        expect(exported.status, exported.text).toBe(200);
        expect(exported.body.factors).toMatchObject({ passkeys: [], recoveryCodes: null });
        await mailSaying(u.email, 'every passkey was removed');
      });

      it('removes every passkey with a password reset and removePasskeys: it no longer signs in, the owner is told', async () => {
        const u = await userWithPasskey(call);
        expect((await call('POST', '/auth/password/forgot', { body: { email: u.email } })).status).toBe(202);
        const mail = await mailSaying(u.email, '/reset-password#token=');
        const reset = await call('POST', '/auth/password/reset', {
          body: { token: tokenFrom(mail), password: NEW_PASSWORD, removePasskeys: true },
        });
        expect(reset.status, reset.text).toBe(204);
        expectProblem(await signInWith(call, u.device), 401, 'invalid_passkey');
        // No second factor left: the new password gives tokens at once.
        const s = await login(call, u.email, NEW_PASSWORD);
        expect(await passkeyCount(call, s)).toBe(0);
        expect(await listed(call, s)).toEqual([]);
        await mailSaying(u.email, 'every passkey was removed');
      });

      it('leaves the passkeys in place on a password change or reset without removePasskeys', async () => {
        const u = await userWithPasskey(call);
        const changed = await call('PUT', '/users/me', {
          token: u.accessToken,
          body: { password: NEW_PASSWORD, currentPassword: PASSWORD },
        });
        expect(changed.status, changed.text).toBe(200);
        expect(changed.body.mfa.passkeys).toBe(1);
        await expectSignedIn(call, await signInWith(call, u.device), u.userId, ['hwk']);

        expect((await call('POST', '/auth/password/forgot', { body: { email: u.email } })).status).toBe(202);
        const mail = await mailSaying(u.email, '/reset-password#token=');
        const reset = await call('POST', '/auth/password/reset', { body: { token: tokenFrom(mail), password: PASSWORD } });
        expect(reset.status, reset.text).toBe(204);
        const signedIn = await signInWith(call, u.device);
        await expectSignedIn(call, signedIn, u.userId, ['hwk']);
        expect(await passkeyCount(call, { ...u, accessToken: signedIn.body.accessToken })).toBe(1);
      });

      it('takes removePasskeys only with a password change: 400 validation_failed without one; the passkey stays', async () => {
        const u = await userWithPasskey(call);
        const put = (body: object) => call('PUT', '/users/me', { token: u.accessToken, body });
        const alone = await put({ name: 'Renamed', currentPassword: PASSWORD, removePasskeys: true });
        expectProblem(alone, 400, 'validation_failed');
        expect(alone.body.errors.map((e: { path: string }) => e.path)).toContain('removePasskeys');
        // With a new password but no current one: the usual refusal of a password change.
        expectProblem(await put({ password: NEW_PASSWORD, removePasskeys: true }), 403, 'current_password_required');
        expect(await passkeyCount(call, u)).toBe(1);
        await expectSignedIn(call, await signInWith(call, u.device), u.userId, ['hwk']);
      });
    });

    describe('adding a passkey can end the other sessions', () => {
      it('ends every other session of the user with endOtherSessions (this one stays); without it they stay', async () => {
        const s = await registerAndLogin(call);
        const other = await login(call, s.email, PASSWORD);
        const meOf = async (x: Session) => (await call('GET', '/users/me', { token: x.accessToken })).status;
        await enrol(call, s);
        expect(await meOf(other)).toBe(200);

        const response = newDevice().register(await creationOptions(call, s));
        const res = await postPasskey(call, s, response, 'Phone', { endOtherSessions: true });
        expect(res.status, res.text).toBe(201);
        expect(await meOf(other)).toBe(401);
        expect((await call('POST', '/auth/refresh', { body: { refreshToken: other.refreshToken } })).status).toBe(401);
        expect(await meOf(s)).toBe(200);
        const sessions = await call('GET', '/users/me/sessions', { token: s.accessToken });
        expect(sessions.body.items.map((i: { current: boolean }) => i.current)).toEqual([true]);
        expect(await passkeyCount(call, s)).toBe(2);
      });
    });

    it('audits adding, using and removing a passkey, and never logs or stores its protocol bytes or public key', async () => {
      const admin = await loginAdmin(call);
      const s = await registerAndLogin(call);
      const device = newDevice();
      const refused = newDevice().register(await creationOptions(call, s), { origin: 'https://evil.example' });
      expect((await postPasskey(call, s, refused)).status).toBe(400);
      const registration = device.register(await creationOptions(call, s));
      const added = await postPasskey(call, s, registration);
      expect(added.status).toBe(201);
      const assertion = device.authenticate(await requestOptions(call));
      expect((await passkeyLogin(call, assertion)).status).toBe(200);
      expect((await passkeyLogin(call, assertion)).status).toBe(401);
      const { mfaToken } = await mfaStep(call, s.email);
      const second = device.authenticate(await requestOptions(call, { mfaToken }));
      expect((await verifyPasskey(call, mfaToken, second)).status).toBe(200);
      expect((await deletePasskey(call, s, added.body.id)).status).toBe(204);

      const logs = async (query: string): Promise<LogEntry[]> => {
        const res = await call('GET', `/admin/logs?${query}&limit=100`, { token: admin.accessToken });
        expect(res.status, res.text).toBe(200);
        return res.body.items;
      };
      await app.t.services.audit.idle();
      const own = await logs(`actorId=${s.userId}`);
      expect(own.map((e) => e.detail)).toContain('passkey_removed');
      const of = (action: string) => own.filter((e) => e.action === action).map(({ status, detail }) => ({ status, detail }));
      expect(of('users.me.passkeys.add')).toEqual(
        expect.arrayContaining([
          { status: 201, detail: 'passkey_added' },
          { status: 400, detail: 'passkey_invalid' },
        ]),
      );
      expect(of('auth.passkey.login')).toEqual([{ status: 200, detail: 'passkey_login' }]);
      expect(of('auth.mfa.verify')).toEqual([{ status: 200, detail: 'mfa_verified: passkey' }]);
      expect(of('users.me.passkeys.remove')).toEqual([{ status: 204, detail: 'passkey_removed' }]);
      // The replay signed nobody in: it is logged without an actor.
      const logins = await logs('action=auth.passkey.login&status=401');
      expect(logins.length).toBeGreaterThan(0);
      expect(logins.every((e) => e.actorId === null && e.detail === 'passkey_invalid')).toBe(true);

      const publicKey = device.publicKeyOf(registration.id);
      const secrets = {
        'registration clientDataJSON': registration.response.clientDataJSON,
        attestationObject: registration.response.attestationObject,
        'refused attestationObject': refused.response.attestationObject,
        'assertion clientDataJSON': assertion.response.clientDataJSON,
        authenticatorData: assertion.response.authenticatorData,
        signature: assertion.response.signature,
        'MFA signature': second.response.signature,
        'public key': publicKey,
        'public key (base64)': Buffer.from(publicKey, 'base64url').toString('base64'),
      };
      const everything = `${JSON.stringify(own)}\n${JSON.stringify(logins)}\n${app.t.logs.text}`;
      for (const [what, bytes] of Object.entries(secrets)) expect(everything.includes(bytes), what).toBe(false);
    });
  });
}

describe('passkeys with EMAIL_VERIFICATION=required', () => {
  const smtp = new TestSmtp();
  beforeAll(() => smtp.start());
  afterAll(() => smtp.stop());
  const app = useTestApp('pglite', () => ({
    overrides: { PUBLIC_URL: ORIGIN, SMTP_URL: smtp.url, EMAIL_VERIFICATION: 'required', MAIL_PER_ADDRESS_PER_HOUR: '100' },
    app: { mail: FAST_MAIL },
  }));
  const { call } = app;
  /** Confirms the address with the newest link mailed to it. */
  async function confirm(email: string, mails: number) {
    const mail = (await smtp.waitFor(email, mails)).at(-1)!;
    const res = await call('POST', '/auth/verify-email', { body: { token: tokenFrom(mail) } });
    expect(res.status, res.text).toBe(200);
  }

  it('refuses a passkey sign-in while the address is not confirmed (403 email_not_verified), and signs in once it is', async () => {
    const email = uniqueEmail();
    expect((await call('POST', '/auth/register', { body: { email, password: PASSWORD, name: 'Ann' } })).status).toBe(201);
    await confirm(email, 1);
    const s = await login(call, email, PASSWORD);
    const { device } = await enrol(call, s);
    // A new address is unconfirmed until its link is used.
    const moved = uniqueEmail('moved');
    const put = await call('PUT', '/users/me', { token: s.accessToken, body: { email: moved, currentPassword: PASSWORD } });
    expect(put.body.emailVerified, put.text).toBe(false);
    expectProblem(await signInWith(call, device), 403, 'email_not_verified');
    await confirm(moved, 1);
    await expectSignedIn(call, await signInWith(call, device), s.userId, ['hwk']);
  });
});

describe('passkeys across two instances over one PostgreSQL and one Redis', () => {
  const two = useTwoInstances({ overrides: { PUBLIC_URL: ORIGIN } });

  it('finishes on B a registration whose options A issued, and refuses the same response posted again on A', async () => {
    const s = await registerAndLogin(two.callA);
    const response = newDevice().register(await creationOptions(two.callA, s));
    expect((await postPasskey(two.callB, s, response)).status).toBe(201);
    expectProblem(await postPasskey(two.callA, s, response), 400, 'invalid_passkey');
    expect(await passkeyCount(two.callA, s)).toBe(1);
    expect(await passkeyCount(two.callB, s)).toBe(1);
  });

  it('signs in on A with options from B, and refuses the same assertion replayed on B', async () => {
    const u = await userWithPasskey(two.callA);
    const response = u.device.authenticate(await requestOptions(two.callB));
    await expectSignedIn(two.callB, await passkeyLogin(two.callA, response), u.userId, ['hwk']);
    expectProblem(await passkeyLogin(two.callB, response), 401, 'invalid_passkey');
  });

  it('lets only one of two assertions with the same counter sign in, when A and B get them at once (a cloned device)', async () => {
    const u = await userWithPasskey(two.callA);
    const first = u.device.authenticate(await requestOptions(two.callA), { counter: 7 });
    const twin = u.device.authenticate(await requestOptions(two.callB), { counter: 7 });
    const results = await Promise.all([passkeyLogin(two.callA, first), passkeyLogin(two.callB, twin)]);
    expect(results.map((r) => r.status).sort(), results.map((r) => r.text).join('; ')).toEqual([200, 401]);
    expectProblem(results.find((r) => r.status === 401)!, 401, 'invalid_passkey');
  });

  it('finishes on B the MFA step of a password sign-in on A, with the passkey options from A', async () => {
    const u = await userWithPasskey(two.callA);
    const { mfaToken } = await mfaStep(two.callA, u.email);
    const answer = u.device.authenticate(await requestOptions(two.callA, { mfaToken }));
    await expectSignedIn(two.callA, await verifyPasskey(two.callB, mfaToken, answer), u.userId, ['pwd', 'hwk']);
    expectProblem(await verifyPasskey(two.callA, mfaToken, answer), 401, 'invalid_mfa_token');
  });
});
