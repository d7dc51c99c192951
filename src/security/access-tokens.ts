// Access tokens: signed JWTs (EdDSA or ES256) and their verification. A
// verified token's claims are cached by its exact text until it expires,
// because signature verification is the most expensive step of a request.
// The same verifier also accepts the OpenID provider's own access tokens
// (RFC 9068, `typ: at+jwt`, RS256) when their audience names this API.
import { LRUCache } from 'lru-cache';
import { encodeBase64Url } from 'hono/utils/encode';
import { verify as verifyJws } from 'hono/utils/jwt/jwt';
import { signing } from 'hono/utils/jwt/jws';
import { isUuid } from '../lib/cursor.js';
import { ALLOWED_ALGS, type KeyRing } from './key-ring.js';

export type AccessClaims = {
  iss: string;
  aud: string;
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  roles: string[];
  /** How the user signed in (RFC 8176): ["pwd"], ["pwd","otp"], ["pwd","hwk"] or ["hwk"]. */
  amr: string[];
  /**
   * Set for a provider access token (issued to this OAuth client): the caller
   * is judged like the user's own token, and refused once the store holds a
   * tombstone for the client or for its tokens in this session. Its `roles`
   * are empty: the user's current roles are read, never the token's.
   */
  clientId?: string;
  /**
   * Set for a service client's own token (client_credentials): `sub` is the
   * client id, `sid` is empty, and the caller is the client, judged by its
   * current roles. Always with `clientId` (= sub).
   */
  service?: true;
};

/** The claims of a provider access token (RFC 9068) that verified: signature, typ, iss and expiry. */
export type ProviderAccessClaims = {
  iss: string;
  sub: string;
  client_id: string;
  scope: string;
  aud: string[];
  jti: string;
  iat: number;
  exp: number;
  sid?: string;
  amr?: string[];
  auth_time?: number;
  roles?: string[];
};

export class InvalidTokenError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidTokenError';
  }
}

const b64json = (v: unknown) => encodeBase64Url(new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer).replace(/=+$/, '');

export async function signAccessToken(ring: KeyRing, claims: AccessClaims): Promise<string> {
  // hono's sign() writes no kid for a CryptoKey, so the header is built here and
  // only the signature is delegated to hono's JWS helper.
  const head = `${b64json({ alg: ring.signing.alg, typ: 'JWT', kid: ring.signing.kid })}.${b64json(claims)}`;
  const sig = await signing(ring.signing.key, ring.signing.alg, new TextEncoder().encode(head));
  return `${head}.${encodeBase64Url(sig).replace(/=+$/, '')}`;
}

const CLOCK_SKEW_SECONDS = 30;
const MAX_TOKEN_LENGTH = 4096;
/** The only spelling accepted: three unpadded base64url segments (RFC 7515 compact form). */
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * A segment decodes to bytes that encode back to the very same text: no
 * padding, and no stray low bits in the last character (which would give one
 * signature many spellings).
 */
const canonical = (segment: string) => Buffer.from(segment, 'base64url').toString('base64url') === segment;

type Header = { alg?: unknown; kid?: unknown; typ?: unknown };

/** The header of a compact JWS that passed the shape checks, or an InvalidTokenError. */
function headerOf(token: string): { header: Header; parts: [string, string, string] } {
  if (token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('too long');
  if (!COMPACT.test(token)) throw new InvalidTokenError('malformed');
  const parts = token.split('.') as [string, string, string];
  if (!parts.every(canonical)) throw new InvalidTokenError('not canonical base64url');
  let header: Header;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as Header;
  } catch {
    throw new InvalidTokenError('malformed header');
  }
  if (typeof header !== 'object' || header === null) throw new InvalidTokenError('malformed header');
  return { header, parts };
}

const RS256 = { name: 'RSASSA-PKCS1-v1_5' } as const;

/** `typ: at+jwt` (RFC 9068 4: also with the `application/` prefix, case-insensitively). */
export const isAccessTokenTyp = (typ: unknown) => typeof typ === 'string' && /^(application\/)?at\+jwt$/i.test(typ);

/**
 * Verify a provider access token: RS256 under one of the provider's keys,
 * `typ: at+jwt`, `iss` = the provider's issuer, not expired (with the clock
 * skew), and the claims every such token carries. The audience is the caller's to judge.
 */
export async function verifyProviderAccessToken(
  ring: KeyRing,
  token: string,
  opts: { issuer: string; nowSeconds: number },
): Promise<ProviderAccessClaims> {
  const { header, parts } = headerOf(token);
  if (!isAccessTokenTyp(header.typ)) throw new InvalidTokenError('not an access token (typ)');
  if (header.alg !== 'RS256') throw new InvalidTokenError('algorithm not allowed');
  const entry = typeof header.kid === 'string' ? ring.provider.verifying.get(header.kid) : undefined;
  if (entry?.alg !== 'RS256') throw new InvalidTokenError('unknown kid');
  const ok = await crypto.subtle.verify(
    RS256,
    entry.key,
    Buffer.from(parts[2], 'base64url'),
    new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
  );
  if (!ok) throw new InvalidTokenError('signature rejected');
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new InvalidTokenError('malformed payload');
  }
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new InvalidTokenError('malformed payload');
  const now = opts.nowSeconds;
  if (p.iss !== opts.issuer) throw new InvalidTokenError('issuer');
  if (typeof p.exp !== 'number' || p.exp + CLOCK_SKEW_SECONDS <= now) throw new InvalidTokenError('expired');
  if (typeof p.iat !== 'number' || p.iat > now + CLOCK_SKEW_SECONDS) throw new InvalidTokenError('issued in the future');
  if (typeof p.nbf === 'number' && p.nbf > now + CLOCK_SKEW_SECONDS) throw new InvalidTokenError('not yet valid');
  const aud = typeof p.aud === 'string' ? [p.aud] : p.aud;
  if (!Array.isArray(aud) || !aud.every((a) => typeof a === 'string')) throw new InvalidTokenError('bad aud');
  if (typeof p.sub !== 'string' || typeof p.client_id !== 'string' || typeof p.jti !== 'string' || typeof p.scope !== 'string') {
    throw new InvalidTokenError('missing claims');
  }
  if (p.sid !== undefined && typeof p.sid !== 'string') throw new InvalidTokenError('bad sid');
  const strings = (v: unknown) => v === undefined || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
  if (!strings(p.amr) || !strings(p.roles)) throw new InvalidTokenError('bad amr or roles');
  return { ...(p as Omit<ProviderAccessClaims, 'aud'>), aud };
}

export type TokenVerifier = {
  (token: string): Promise<AccessClaims>;
  /** The claims of this exact token if this instance has verified it and it has not expired; no work done. */
  known(token: string): AccessClaims | undefined;
};

/** A verifier bound to a key ring, with its own bounded cache of verified claims. */
export function createTokenVerifier(
  ring: KeyRing,
  opts: {
    issuer: string;
    audience: string;
    now: () => number;
    /** The configured access-token life: a token claiming a longer one was not issued here. */
    maxLifetimeSeconds?: number;
    /** The OpenID provider's issuer (PUBLIC_URL): its access tokens are accepted when their `aud` includes `audience`. Unset: refused. */
    providerIssuer?: string;
    cacheSize?: number;
  },
): TokenVerifier {
  // Keyed by the exact token text, so only that spelling is ever vouched for.
  const cache = new LRUCache<string, AccessClaims>({ max: opts.cacheSize ?? 10_000 });
  const nowSec = () => Math.floor(opts.now() / 1000);
  const maxLifetime = (opts.maxLifetimeSeconds ?? 86_400) + CLOCK_SKEW_SECONDS;

  const known = (token: string): AccessClaims | undefined => {
    const hit = cache.get(token);
    if (hit && hit.exp + CLOCK_SKEW_SECONDS <= nowSec()) {
      cache.delete(token);
      return undefined;
    }
    return hit;
  };

  const verify = async (token: string): Promise<AccessClaims> => {
    if (token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('too long');
    const hit = known(token);
    if (hit) return hit;
    const { header } = headerOf(token);
    if (isAccessTokenTyp(header.typ)) return verifyProvider(token);
    if (typeof header.alg !== 'string' || !(ALLOWED_ALGS as readonly string[]).includes(header.alg)) {
      throw new InvalidTokenError('algorithm not allowed');
    }
    const entry = typeof header.kid === 'string' ? ring.verifying.get(header.kid) : undefined;
    if (!entry) throw new InvalidTokenError('unknown kid');
    if (entry.alg !== header.alg) throw new InvalidTokenError('algorithm does not match key');
    let payload: Record<string, unknown>;
    try {
      payload = (await verifyJws(token, entry.key, {
        alg: entry.alg,
        iss: opts.issuer,
        aud: opts.audience,
        // time claims are checked below with the injected clock and a skew allowance
        exp: false,
        nbf: false,
        iat: false,
      })) as Record<string, unknown>;
    } catch {
      throw new InvalidTokenError('signature or claims rejected');
    }
    const now = nowSec();
    const { sub, sid, jti, iat, exp, roles, iss, aud, amr } = payload;
    if (typeof exp !== 'number' || exp + CLOCK_SKEW_SECONDS <= now) throw new InvalidTokenError('expired');
    if (typeof iat !== 'number' || iat > now + CLOCK_SKEW_SECONDS) throw new InvalidTokenError('issued in the future');
    if (exp - iat > maxLifetime) throw new InvalidTokenError('lives longer than access tokens are issued for');
    if (typeof payload.nbf === 'number' && payload.nbf > now + CLOCK_SKEW_SECONDS) throw new InvalidTokenError('not yet valid');
    if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string') {
      throw new InvalidTokenError('missing claims');
    }
    // Ids are UUIDs everywhere else; anything else would reach the database as a bad cast.
    if (!isUuid(sub) || !isUuid(sid)) throw new InvalidTokenError('sub or sid is not a UUID');
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) throw new InvalidTokenError('bad roles');
    // An ID token signed with this key (EdDSA) always names its azp: it is never an access token.
    if (payload.azp !== undefined) throw new InvalidTokenError('an ID token');
    // Tokens issued before second factors existed carry no amr: they were password sign-ins.
    if (amr !== undefined && (!Array.isArray(amr) || !amr.every((m) => typeof m === 'string'))) throw new InvalidTokenError('bad amr');
    const claims: AccessClaims = {
      iss: iss as string,
      aud: aud as string,
      sub,
      sid,
      jti,
      iat,
      exp,
      roles,
      amr: (amr as string[] | undefined) ?? ['pwd'],
    };
    cache.set(token, claims, { ttl: Math.max(1, (exp + CLOCK_SKEW_SECONDS - now) * 1000) });
    return claims;
  };
  // A provider access token of a user, for this API: judged like the user's own token from here on.
  const verifyProvider = async (token: string): Promise<AccessClaims> => {
    if (opts.providerIssuer === undefined) throw new InvalidTokenError('provider tokens not accepted');
    const now = nowSec();
    const p = await verifyProviderAccessToken(ring, token, { issuer: opts.providerIssuer, nowSeconds: now });
    if (!p.aud.includes(opts.audience)) throw new InvalidTokenError('not for this API (aud)');
    if (p.exp - p.iat > maxLifetime) throw new InvalidTokenError('lives longer than access tokens are issued for');
    if (p.sid === undefined) {
      // A service client's own token (client_credentials): sub is the client.
      if (p.sub !== p.client_id) throw new InvalidTokenError('neither a user session token nor a service client token');
      const claims: AccessClaims = {
        iss: p.iss,
        aud: opts.audience,
        sub: p.sub,
        sid: '',
        jti: p.jti,
        iat: p.iat,
        exp: p.exp,
        roles: [],
        amr: [],
        clientId: p.client_id,
        service: true,
      };
      cache.set(token, claims, { ttl: Math.max(1, (p.exp + CLOCK_SKEW_SECONDS - now) * 1000) });
      return claims;
    }
    if (!isUuid(p.sub) || !isUuid(p.sid)) throw new InvalidTokenError('not a user session token');
    const claims: AccessClaims = {
      iss: p.iss,
      aud: opts.audience,
      sub: p.sub,
      sid: p.sid,
      jti: p.jti,
      iat: p.iat,
      exp: p.exp,
      roles: [],
      amr: p.amr ?? ['pwd'],
      clientId: p.client_id,
    };
    cache.set(token, claims, { ttl: Math.max(1, (p.exp + CLOCK_SKEW_SECONDS - now) * 1000) });
    return claims;
  };
  return Object.assign(verify, { known });
}
