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
import { describe, expect, it } from 'vitest';
import { loginAdmin, PASSWORD, registerAndLogin, uniqueEmail, type Call, type Res, type Session } from '../helpers/http.js';
import { BACKENDS } from '../helpers/services.js';
import { useTestApp } from '../helpers/use-app.js';
import { useTwoInstances } from '../helpers/two-instances.js';
import { type AuthenticateTamper, type RegisterTamper, SoftAuthenticator } from '../helpers/webauthn.js';

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';

type Passkey = { id: string; name: string; createdAt: string; lastUsedAt: string | null };
type LogEntry = { actorId: string | null; action: string; status: number; detail: string | null };
/** A user with one passkey, and the device that holds it. */
type Enrolled = Session & { device: SoftAuthenticator; credentialId: string; passkeyId: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
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

async function creationOptions(call: Call, s: Session): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const res = await call('POST', '/users/me/passkeys/options', { token: s.accessToken });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

const postPasskey = (call: Call, s: Session, response: RegistrationResponseJSON, name = 'Laptop') =>
  call('POST', '/users/me/passkeys', { token: s.accessToken, body: { name, response } });

/** Registers a new passkey of `device` for the user. */
async function enrol(call: Call, s: Session, device = newDevice(), name = 'Laptop') {
  const response = device.register(await creationOptions(call, s));
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

/** Polls until the check gives a value (audit entries are written in batches). */
async function eventually<T>(check: () => Promise<T | undefined>, what: string, ms = 2_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(25);
  }
}

for (const backend of BACKENDS) {
  describe(`passkeys on ${backend}`, () => {
    const app = useTestApp(backend, { overrides: { PUBLIC_URL: ORIGIN } });
    const { call } = app;

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

      it('gives no passkey options for a made-up mfaToken', async () => {
        const res = await call('POST', '/auth/passkey/options', { body: { mfaToken: randomBytes(32).toString('base64url') } });
        expectProblem(res, 401, 'invalid_mfa_token');
      });
    });

    describe('removing a passkey', () => {
      it('removes one of your passkeys (then 404); the password alone signs in again and the removed passkey no longer does', async () => {
        const u = await userWithPasskey(call);
        const other = await userWithPasskey(call);
        const theirs = await call('DELETE', `/users/me/passkeys/${other.passkeyId}`, { token: u.accessToken });
        expectProblem(theirs, 404, 'passkey_not_found');
        expect((await listed(call, other)).map((p) => p.id)).toEqual([other.passkeyId]);

        const res = await call('DELETE', `/users/me/passkeys/${u.passkeyId}`, { token: u.accessToken });
        expect(res.status, res.text).toBe(204);
        expectProblem(await call('DELETE', `/users/me/passkeys/${u.passkeyId}`, { token: u.accessToken }), 404, 'passkey_not_found');
        expect(await passkeyCount(call, u)).toBe(0);
        expect(await listed(call, u)).toEqual([]);

        const password = await call('POST', '/auth/login', { body: { email: u.email, password: PASSWORD } });
        await expectSignedIn(call, password, u.userId, ['pwd']);
        expectProblem(await signInWith(call, u.device), 401, 'invalid_passkey');
        await expectSignedIn(call, await signInWith(call, other.device), other.userId, ['hwk']);
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
      expect((await call('DELETE', `/users/me/passkeys/${added.body.id}`, { token: s.accessToken })).status).toBe(204);

      const logs = async (query: string): Promise<LogEntry[]> => {
        const res = await call('GET', `/admin/logs?${query}&limit=100`, { token: admin.accessToken });
        expect(res.status, res.text).toBe(200);
        return res.body.items;
      };
      const own = await eventually(async () => {
        await app.t.services.audit.flush();
        const items = await logs(`actorId=${s.userId}`);
        return items.some((e) => e.detail === 'passkey.removed') ? items : undefined;
      }, 'the removal in the audit log');
      const of = (action: string) => own.filter((e) => e.action === action).map(({ status, detail }) => ({ status, detail }));
      expect(of('users.me.passkeys.add')).toEqual(
        expect.arrayContaining([
          { status: 201, detail: 'passkey.added' },
          { status: 400, detail: 'passkey_invalid' },
        ]),
      );
      expect(of('auth.passkey.login')).toEqual([{ status: 200, detail: 'passkey.login' }]);
      expect(of('auth.mfa.verify')).toEqual([{ status: 200, detail: 'mfa.verified: passkey' }]);
      expect(of('users.me.passkeys.remove')).toEqual([{ status: 204, detail: 'passkey.removed' }]);
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
