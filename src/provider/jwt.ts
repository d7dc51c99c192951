// The provider's JWTs: ID tokens (OpenID Connect Core 2), its access tokens
// (RFC 9068) and the checks of tokens it issued that come back to it
// (id_token_hint, a Bearer token at userinfo). Keys are the key ring's
// provider keys; the issuer is PUBLIC_URL, never a request header.
import { createHash, randomUUID } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose';
import type { AppServices } from '../deps.js';
import { InvalidTokenError, type ProviderAccessClaims, verifyProviderAccessToken as verifyAccessJwt } from '../security/access-tokens.js';
import type { ProviderAlg } from '../security/key-ring.js';
import { oauthAccessRevoked, oauthClientRevoked, storeKeys } from '../store/store.js';

type Svc = Pick<AppServices, 'keyRing' | 'config' | 'clock'>;

export type IdTokenAlg = ProviderAlg;

/** The algorithms ID tokens can be signed with here, RS256 first (what discovery lists). */
export function idTokenAlgs(svc: Pick<AppServices, 'keyRing'>): IdTokenAlg[] {
  const s = svc.keyRing.provider.signing;
  return (['RS256', 'ES256', 'EdDSA'] as const).filter((alg) => s[alg] !== undefined);
}

const nowSeconds = (svc: Pick<AppServices, 'clock'>) => Math.floor(svc.clock() / 1000);

/** An ID token's claims as the caller knows them; iss, iat and azp are filled in when absent, exp defaults to the access-token life. */
export type IdTokenClaims = JWTPayload & {
  sub: string;
  aud: string | string[];
  exp?: number;
  nonce?: string;
  sid?: string;
  auth_time?: number;
  amr?: string[];
  at_hash?: string;
  azp?: string;
};

/**
 * Sign an ID token with `alg` (header typ JWT and the key's kid). It always
 * names its azp: the API's own verifier refuses a token with one, so an
 * EdDSA ID token (signed with the API's key) never passes for an access token.
 */
export async function signIdToken(svc: Svc, alg: IdTokenAlg, claims: IdTokenClaims): Promise<string> {
  const key = svc.keyRing.provider.signing[alg];
  if (!key) throw new Error(`no ${alg} key: this provider does not sign ID tokens with ${alg}`);
  const iat = claims.iat ?? nowSeconds(svc);
  const azp = claims.azp ?? (Array.isArray(claims.aud) ? claims.aud[0] : claims.aud);
  const payload: JWTPayload = {
    ...claims,
    iss: svc.config.publicUrl,
    iat,
    exp: claims.exp ?? iat + svc.config.jwt.accessTtlSeconds,
    azp,
  };
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', kid: key.kid }).sign(key.key);
}

/** A provider access token's claims as the caller knows them (RFC 9068 2.2); iss, iat, exp and jti are filled in. */
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
  roles?: string[];
};

/** Sign a provider access token: RS256, header typ at+jwt, ACCESS_TOKEN_TTL_SECONDS. */
export async function signProviderAccessToken(svc: Svc, claims: ProviderAccessInput): Promise<string> {
  const key = svc.keyRing.provider.signing.RS256;
  const iat = nowSeconds(svc);
  const aud = claims.aud && claims.aud.length > 0 ? claims.aud : [svc.config.publicUrl];
  const payload: JWTPayload = {
    ...claims,
    iss: svc.config.publicUrl,
    aud,
    jti: randomUUID(),
    iat,
    exp: iat + svc.config.jwt.accessTtlSeconds,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: key.kid }).sign(key.key);
}

/**
 * at_hash / c_hash (OpenID Connect Core 3.1.3.6): the left half of the hash of
 * the token's ASCII text, base64url; SHA-256 for RS256 and ES256, SHA-512 for EdDSA (Ed25519).
 */
export function atHash(alg: IdTokenAlg, accessToken: string): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256')
    .update(accessToken, 'ascii')
    .digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** What an id_token_hint tells once its signature and issuer check out. */
export type IdTokenHint = JWTPayload & { sub: string; aud: string[]; sid?: string };

/**
 * An ID token this provider issued, signature and issuer checked, or null.
 * Its expiry is NOT checked: RP-initiated logout accepts an expired hint
 * (and authorize uses it only to name the user it expects).
 */
export async function verifyIdTokenHint(svc: Svc, token: string): Promise<IdTokenHint | null> {
  if (token.length > 8192) return null;
  try {
    const header = decodeProtectedHeader(token);
    // An access token or a logout token is no ID token, though our keys signed it.
    if (header.typ !== undefined && header.typ !== 'JWT') return null;
    const entry = typeof header.kid === 'string' ? svc.keyRing.provider.verifying.get(header.kid) : undefined;
    if (!entry || entry.alg !== header.alg) return null;
    const { payload } = await compactVerify(token, entry.key, { algorithms: [entry.alg] });
    const claims = JSON.parse(new TextDecoder().decode(payload)) as JWTPayload;
    if (typeof claims !== 'object' || claims === null || claims.iss !== svc.config.publicUrl) return null;
    if (typeof claims.sub !== 'string') return null;
    const aud = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
    if (!Array.isArray(aud) || !aud.every((a) => typeof a === 'string')) return null;
    if (claims.sid !== undefined && typeof claims.sid !== 'string') return null;
    return { ...claims, sub: claims.sub, aud } as IdTokenHint;
  } catch {
    return null;
  }
}

/**
 * A provider access token (typ at+jwt, RS256 under one of our keys, iss,
 * exp) and its claims, or null. Liveness (session, grant, client) is the caller's to check.
 */
export async function verifyProviderAccessToken(svc: Svc, token: string): Promise<ProviderAccessClaims | null> {
  try {
    return await verifyAccessJwt(svc.keyRing, token, { issuer: svc.config.publicUrl, nowSeconds: nowSeconds(svc) });
  } catch (err) {
    if (err instanceof InvalidTokenError) return null;
    throw err;
  }
}

/**
 * Whether the store holds a tombstone for this provider access token: its
 * client's tokens in its session revoked, its client deleted, or (a service
 * client's token, without sid) issued before the client's last change epoch.
 * For userinfo and introspection; the API reads the same keys in its own round trip.
 */
export async function providerTokenRevoked(svc: Pick<AppServices, 'store'>, claims: ProviderAccessClaims): Promise<boolean> {
  const { values } = await svc.store.batch({
    gets: [
      storeKeys.oauthClient(claims.client_id),
      ...(claims.sid === undefined ? [] : [storeKeys.oauthAccess(claims.sid, claims.client_id)]),
    ],
  });
  const [client, access] = values;
  // The same judgement as the API's (surfaces/api/authenticate.ts); a token without sid is the client's own.
  return oauthAccessRevoked(access, claims.iat) || oauthClientRevoked(client, claims.iat, claims.sid === undefined);
}
