// The software authenticator speaks WebAuthn well enough for @simplewebauthn/server to accept it,
// and its tamper options produce responses the library refuses.
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type WebAuthnCredential,
} from '@simplewebauthn/server';
import { describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/webauthn.js';

const rpID = 'localhost';
const origin = 'http://localhost:3000';

const registrationOptions = () => generateRegistrationOptions({ rpName: 'Test', rpID, userName: 'alice@example.com' });

async function enrolled() {
  const authenticator = new SoftAuthenticator({ origin });
  const options = await registrationOptions();
  const verification = await verifyRegistrationResponse({
    response: authenticator.register(options),
    expectedChallenge: options.challenge,
    expectedOrigin: origin,
    expectedRPID: rpID,
  });
  if (!verification.verified) throw new Error('registration did not verify');
  return { authenticator, credential: verification.registrationInfo.credential, userId: options.user.id };
}

const verifyAssertion = (response: AuthenticationResponseJSON, challenge: string, credential: WebAuthnCredential) =>
  verifyAuthenticationResponse({ response, expectedChallenge: challenge, expectedOrigin: origin, expectedRPID: rpID, credential });

describe('SoftAuthenticator against @simplewebauthn/server', () => {
  it('produces a registration that verifies as user-verified "none" attestation', async () => {
    const authenticator = new SoftAuthenticator({ origin });
    const options = await registrationOptions();
    const response = authenticator.register(options);
    const verification = await verifyRegistrationResponse({
      response,
      expectedChallenge: options.challenge,
      expectedOrigin: origin,
      expectedRPID: rpID,
    });
    expect(verification.verified).toBe(true);
    expect(verification.registrationInfo).toMatchObject({ fmt: 'none', userVerified: true, rpID, origin });
    expect(verification.registrationInfo?.credential).toMatchObject({ id: response.id, counter: 0, transports: ['internal'] });
    expect(authenticator.credentials).toEqual([{ id: response.id, counter: 0, userHandle: options.user.id, rpId: rpID }]);
  });

  it('refuses to register again when one of its credentials is excluded', async () => {
    const { authenticator, credential } = await enrolled();
    const options = await generateRegistrationOptions({ rpName: 'Test', rpID, userName: 'a', excludeCredentials: [{ id: credential.id }] });
    expect(() => authenticator.register(options)).toThrow('InvalidStateError');
  });

  it('signs assertions that verify, with the counter going up by one each time', async () => {
    const { authenticator, credential, userId } = await enrolled();
    for (const expected of [1, 2]) {
      const options = await generateAuthenticationOptions({ rpID, allowCredentials: [{ id: credential.id }] });
      const response = authenticator.authenticate(options);
      expect(response.response.userHandle).toBe(userId);
      const result = await verifyAssertion(response, options.challenge, credential);
      expect(result.verified).toBe(true);
      expect(result.authenticationInfo).toMatchObject({ newCounter: expected, userVerified: true });
      credential.counter = result.authenticationInfo.newCounter;
    }
  });

  it('answers a discoverable request (no allowCredentials) with its newest credential', async () => {
    const { authenticator, credential } = await enrolled();
    const options = await generateAuthenticationOptions({ rpID });
    const response = authenticator.authenticate(options);
    expect(response.id).toBe(credential.id);
    expect((await verifyAssertion(response, options.challenge, credential)).verified).toBe(true);
  });

  it.each([
    ['a wrong origin', { origin: 'http://evil.example' }, /origin/],
    ['a wrong challenge', { challenge: 'bm90LXRoZS1jaGFsbGVuZ2U' }, /challenge/],
    ['a wrong RP ID', { rpId: 'evil.example' }, /RP ID hash/],
    ['a wrong client data type', { type: 'webauthn.create' }, /response type/],
    ['a missing user-verification flag', { userVerified: false }, /User verification required/],
  ])('yields an assertion the library throws on for %s', async (_, tamper, reason) => {
    const { authenticator, credential } = await enrolled();
    const options = await generateAuthenticationOptions({ rpID });
    await expect(verifyAssertion(authenticator.authenticate(options, tamper), options.challenge, credential)).rejects.toThrow(reason);
  });

  it('yields an assertion that verifies false when signed by an unrelated key', async () => {
    const { authenticator, credential } = await enrolled();
    const options = await generateAuthenticationOptions({ rpID });
    const result = await verifyAssertion(authenticator.authenticate(options, { signWith: 'wrong-key' }), options.challenge, credential);
    expect(result.verified).toBe(false);
  });

  it('registers without UV only if the server opts out of requiring user verification', async () => {
    const options = await registrationOptions();
    const response = new SoftAuthenticator({ origin }).register(options, { userVerified: false });
    const base = { response, expectedChallenge: options.challenge, expectedOrigin: origin, expectedRPID: rpID };
    await expect(verifyRegistrationResponse(base)).rejects.toThrow(/User verification was required/);
    const relaxed = await verifyRegistrationResponse({ ...base, requireUserVerification: false });
    expect(relaxed.registrationInfo?.userVerified).toBe(false);
  });

  it('has the library throw when the counter does not go up past the stored one', async () => {
    const { authenticator, credential } = await enrolled();
    credential.counter = 5;
    for (const counter of [4, 5]) {
      const options = await generateAuthenticationOptions({ rpID });
      const response = authenticator.authenticate(options, { counter });
      await expect(verifyAssertion(response, options.challenge, credential)).rejects.toThrow(/counter value/);
    }
    // A counter of 0 against a stored 0 is allowed: authenticators without counters always report 0.
    const options = await generateAuthenticationOptions({ rpID });
    const zero = authenticator.authenticate(options, { counter: 0 });
    expect(authenticator.credentials[0]?.counter).toBe(0);
    expect((await verifyAssertion(zero, options.challenge, { ...credential, counter: 0 })).verified).toBe(true);
  });
});
