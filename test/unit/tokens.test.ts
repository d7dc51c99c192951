// Signing keys: generated once for development, rotated with JWT_PUBLIC_KEYS.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTokenVerifier, signAccessToken, type AccessClaims } from '../../src/security/access-tokens.js';
import { buildKeyRing, loadKeyRing, type KeyRing } from '../../src/security/key-ring.js';

const claims = (): AccessClaims => {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: 'auth-system',
    aud: 'auth-system',
    sub: randomUUID(),
    sid: randomUUID(),
    jti: randomUUID(),
    iat,
    exp: iat + 600,
    roles: ['user'],
    amr: ['pwd'],
  };
};
const verifierOf = (ring: KeyRing) => createTokenVerifier(ring, { issuer: 'auth-system', audience: 'auth-system', now: Date.now });
const pem = (type: 'ed25519' | 'ec') =>
  (type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')).privateKey
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();

describe('signing keys', () => {
  it('generates a development key once and reuses it after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    const first = await loadKeyRing({ privateKey: undefined, publicKeys: undefined, dataDir: dir });
    const token = await signAccessToken(first, claims());
    const second = await loadKeyRing({ privateKey: undefined, publicKeys: undefined, dataDir: dir });
    expect(second.signing.kid).toBe(first.signing.kid);
    await expect(verifierOf(second)(token)).resolves.toMatchObject({ roles: ['user'] });
    expect(statSync(join(dir, 'jwt-private.pem')).mode & 0o777).toBe(0o600);
  });

  it('keeps tokens of a rotated-out key valid while it is listed in JWT_PUBLIC_KEYS', async () => {
    const oldPem = pem('ed25519');
    const oldRing = await buildKeyRing(oldPem);
    const token = await signAccessToken(oldRing, claims());
    const oldPublic = JSON.stringify(oldRing.jwks);
    const rotated = await buildKeyRing(pem('ed25519'), oldPublic);
    const kids = rotated.jwks.keys.map((k) => k.kid);
    expect(kids).toEqual(expect.arrayContaining([rotated.signing.kid, oldRing.signing.kid]));
    expect(kids.indexOf(rotated.signing.kid)).toBeLessThan(kids.indexOf(oldRing.signing.kid));
    await expect(verifierOf(rotated)(token)).resolves.toBeTruthy();
    const dropped = await buildKeyRing(pem('ed25519'));
    await expect(verifierOf(dropped)(token)).rejects.toThrow(/kid/);
  });

  it('signs with ES256 when given a P-256 key, and refuses other key types', async () => {
    const ring = await buildKeyRing(pem('ec'));
    expect(ring.signing.alg).toBe('ES256');
    const token = await signAccessToken(ring, claims());
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg).toBe('ES256');
    await expect(verifierOf(ring)(token)).resolves.toBeTruthy();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    await expect(buildKeyRing(rsa)).rejects.toThrow(/Ed25519 or P-256/);
  });

  it('does not let a cached signature vouch for another payload', async () => {
    const ring = await buildKeyRing(pem('ed25519'));
    const verify = verifierOf(ring);
    const token = await signAccessToken(ring, claims());
    await verify(token);
    const [h, , sig] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims(), roles: ['admin'] })).toString('base64url')}.${sig}`;
    await expect(verify(forged)).rejects.toThrow();
  });
});
