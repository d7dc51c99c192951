// TEMPORARY stand-in for helper "keys"' src/provider/jwt.ts, written against
// the names of the shared brief so that the token endpoint compiles and runs
// before that file lands. At merge, main's version replaces this file whole.
// Keys here are generated per app and added to its published JWKS.
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import type { AppServices } from '../deps.js';

export type IdTokenSigningAlg = 'RS256' | 'ES256' | 'EdDSA';

/** What the token endpoint knows of an access token; iss, iat, exp and jti are filled in (RFC 9068 2.2). */
export type ProviderAccessInput = {
  sub: string;
  client_id: string;
  /** Space-separated. */
  scope: string;
  /** The client's audiences; default: the issuer. */
  aud?: string[];
  sid?: string;
  amr?: string[];
  auth_time?: number;
};

type ProviderAccessClaims = ProviderAccessInput & { iss: string; aud: string[]; jti: string; iat: number; exp: number };

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

type Svc = Pick<AppServices, 'keyRing' | 'config' | 'clock'>;

export async function signIdToken(
  svc: Svc,
  alg: IdTokenSigningAlg,
  claims: JWTPayload & { sub: string; aud: string | string[] },
): Promise<string> {
  const { kid, privateKey } = await keyFor(svc, alg);
  const iat = claims.iat ?? Math.floor(svc.clock() / 1000);
  return new SignJWT({ ...claims, iss: svc.config.publicUrl, iat, exp: claims.exp ?? iat + svc.config.jwt.accessTtlSeconds })
    .setProtectedHeader({ alg, typ: 'JWT', kid })
    .sign(privateKey);
}

export async function signProviderAccessToken(svc: Svc, claims: ProviderAccessInput): Promise<string> {
  const { kid, privateKey } = await keyFor(svc, 'RS256');
  const iat = Math.floor(svc.clock() / 1000);
  const payload = {
    ...claims,
    iss: svc.config.publicUrl,
    aud: claims.aud && claims.aud.length > 0 ? claims.aud : [svc.config.publicUrl],
    jti: randomUUID(),
    iat,
    exp: iat + svc.config.jwt.accessTtlSeconds,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(privateKey);
}

export function atHash(alg: IdTokenSigningAlg, accessToken: string): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256')
    .update(accessToken)
    .digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** The claims of a provider access token of ours (typ, signature, iss, exp checked), or null. */
export async function verifyProviderAccessToken(svc: Svc, token: string): Promise<ProviderAccessClaims | null> {
  const { publicKey } = await keyFor(svc, 'RS256');
  try {
    const { payload } = await jwtVerify(token, publicKey, {
      algorithms: ['RS256'],
      typ: 'at+jwt',
      issuer: svc.config.publicUrl,
      currentDate: new Date(svc.clock()),
    });
    return payload as unknown as ProviderAccessClaims;
  } catch {
    return null;
  }
}
