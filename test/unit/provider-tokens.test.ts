// The API's verifier meets the provider's access tokens (RFC 9068): accepted
// only as RS256 under the provider's own keys, from its issuer, for this API,
// unexpired, and never by borrowing the API's key or another algorithm.
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../../src/security/access-tokens.js';
import { buildKeyRing } from '../../src/security/key-ring.js';

const ISSUER = 'https://auth.example.test';
const pem = (key: ReturnType<typeof generateKeyPairSync>['privateKey']) => key.export({ format: 'pem', type: 'pkcs8' }).toString();
const ring = await buildKeyRing(pem(generateKeyPairSync('ed25519').privateKey));
const verify = createTokenVerifier(ring, { issuer: 'auth-system', audience: 'auth-system', now: Date.now, providerIssuer: ISSUER });
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

const claims = (over: Record<string, unknown> = {}) => {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    sub: randomUUID(),
    sid: randomUUID(),
    client_id: 'notes-app',
    scope: 'openid',
    aud: ['auth-system'],
    jti: randomUUID(),
    iat,
    exp: iat + 600,
    ...over,
  };
};
const sign = (payload: Record<string, unknown>, header: { alg?: 'RS256' | 'EdDSA'; typ?: string } = {}) => {
  const alg = header.alg ?? 'RS256';
  const key = alg === 'RS256' ? ring.provider.signing.RS256 : ring.signing;
  return new SignJWT(payload).setProtectedHeader({ alg, typ: header.typ ?? 'at+jwt', kid: key.kid }).sign(key.key);
};

describe('provider access tokens at the API', () => {
  it('accepts an RS256 at+jwt of the issuer for this audience, as a session token naming its client', async () => {
    const c = claims();
    await expect(verify(await sign(c))).resolves.toMatchObject({ sub: c.sub, sid: c.sid, clientId: 'notes-app', roles: [] });
    await expect(verify(await sign(claims(), { typ: 'application/at+jwt' }))).resolves.toBeTruthy();
  });

  it('refuses another issuer, another audience, an expired one, one without a session, and one lasting too long', async () => {
    const iat = Math.floor(Date.now() / 1000) - 3600;
    for (const bad of [
      claims({ iss: 'https://other.example.test' }),
      claims({ aud: ['https://notes.example.test'] }),
      claims({ iat, exp: iat + 600 }),
      claims({ sid: undefined }),
      claims({ exp: Math.floor(Date.now() / 1000) + 7 * 86_400 }),
      claims({ sub: 'not-a-uuid' }),
    ]) {
      await expect(verify(await sign(bad)), JSON.stringify(bad)).rejects.toThrow();
    }
  });

  it("refuses at+jwt under the API's own key, an HMAC made with the public key, and alg none", async () => {
    await expect(verify(await sign(claims(), { alg: 'EdDSA' }))).rejects.toThrow();
    const rsaJwk = ring.jwks.keys.find((k) => k.kty === 'RSA')!;
    const head = b64({ alg: 'HS256', typ: 'at+jwt', kid: rsaJwk.kid });
    const body = b64(claims());
    const hmac = createHmac('sha256', JSON.stringify(rsaJwk)).update(`${head}.${body}`).digest('base64url');
    await expect(verify(`${head}.${body}.${hmac}`)).rejects.toThrow(/algorithm/);
    await expect(verify(`${b64({ alg: 'none', typ: 'at+jwt' })}.${body}.x`)).rejects.toThrow();
  });

  it('keeps verifying tokens of a rotated-out RSA key listed in JWT_PUBLIC_KEYS, and publishes it', async () => {
    const token = await sign(claims());
    const oldRsa = ring.jwks.keys.find((k) => k.kty === 'RSA')!;
    const rotated = await buildKeyRing(pem(generateKeyPairSync('ed25519').privateKey), JSON.stringify([oldRsa]));
    expect(rotated.provider.signing.RS256.kid).not.toBe(oldRsa.kid);
    expect(rotated.jwks.keys.map((k) => k.kid)).toContain(oldRsa.kid);
    // An RSA key never verifies the API's own tokens.
    expect(rotated.verifying.has(oldRsa.kid)).toBe(false);
    const v = createTokenVerifier(rotated, { issuer: 'auth-system', audience: 'auth-system', now: Date.now, providerIssuer: ISSUER });
    await expect(v(token)).resolves.toMatchObject({ clientId: 'notes-app' });
  });

  it('refuses an RSA key under 2048 bits', async () => {
    const small = pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey);
    await expect(buildKeyRing(pem(generateKeyPairSync('ed25519').privateKey), undefined, { rsaPrivateKey: small })).rejects.toThrow(/2048/);
  });

  it('refuses them all when the verifier names no provider issuer', async () => {
    const plain = createTokenVerifier(ring, { issuer: 'auth-system', audience: 'auth-system', now: Date.now });
    await expect(plain(await sign(claims()))).rejects.toThrow(/provider/);
  });
});
