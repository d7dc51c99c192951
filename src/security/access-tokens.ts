// Access tokens: signed JWTs (EdDSA or ES256) and their verification. A
// verified token's claims are cached by its exact text until it expires,
// because signature verification is the most expensive step of a request.
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
    if (!COMPACT.test(token)) throw new InvalidTokenError('malformed');
    const parts = token.split('.') as [string, string, string];
    if (!parts.every(canonical)) throw new InvalidTokenError('not canonical base64url');
    let header: { alg?: unknown; kid?: unknown };
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as typeof header;
    } catch {
      throw new InvalidTokenError('malformed header');
    }
    if (typeof header !== 'object' || header === null) throw new InvalidTokenError('malformed header');
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
  return Object.assign(verify, { known });
}
