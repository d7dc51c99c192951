// TEMPORARY stand-in for helper "keys"' src/provider/jwt.ts, written against
// the names of the shared brief so that the token endpoint compiles and runs
// before that file lands. At merge, main's version replaces this file whole.
// Keys here are generated per app and added to its published JWKS.
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import type { AppServices } from '../deps.js';

export type IdTokenSigningAlg = 'RS256' | 'ES256' | 'EdDSA';

export type ProviderAccessClaims = {
  iss: string;
  sub: string;
  client_id: string;
  scope: string;
  sid?: string;
  jti: string;
  iat: number;
  exp: number;
  aud: string[];
  amr?: string[];
  auth_time?: number;
};

type Pair = { kid: string; privateKey: CryptoKey; publicKey: CryptoKey };
const keysOf = new WeakMap<object, Map<IdTokenSigningAlg, Promise<Pair>>>();

function keyFor(svc: Pick<AppServices, 'keyRing'>, alg: IdTokenSigningAlg): Promise<Pair> {
  let byAlg = keysOf.get(svc.keyRing);
  if (!byAlg) {
    byAlg = new Map();
    keysOf.set(svc.keyRing, byAlg);
  }
  let pair = byAlg.get(alg);
  if (!pair) {
    pair = (async () => {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
      const jwk = await exportJWK(publicKey);
      const kid = await calculateJwkThumbprint(jwk);
      (svc.keyRing.jwks.keys as unknown[]).push({ ...jwk, kid, alg, use: 'sig' });
      return { kid, privateKey, publicKey };
    })();
    byAlg.set(alg, pair);
  }
  return pair;
}

export async function signIdToken(svc: Pick<AppServices, 'keyRing'>, alg: IdTokenSigningAlg, claims: JWTPayload): Promise<string> {
  const { kid, privateKey } = await keyFor(svc, alg);
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT', kid }).sign(privateKey);
}

export async function signProviderAccessToken(svc: Pick<AppServices, 'keyRing'>, claims: ProviderAccessClaims): Promise<string> {
  const { kid, privateKey } = await keyFor(svc, 'RS256');
  return new SignJWT(claims as unknown as JWTPayload).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(privateKey);
}

export function atHash(alg: IdTokenSigningAlg, accessToken: string): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256')
    .update(accessToken)
    .digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

export async function verifyProviderAccessToken(
  svc: Pick<AppServices, 'keyRing' | 'config' | 'clock'>,
  token: string,
): Promise<ProviderAccessClaims> {
  const { publicKey } = await keyFor(svc, 'RS256');
  const { payload } = await jwtVerify(token, publicKey, {
    algorithms: ['RS256'],
    typ: 'at+jwt',
    issuer: svc.config.publicUrl,
    currentDate: new Date(svc.clock()),
  });
  return payload as unknown as ProviderAccessClaims;
}
