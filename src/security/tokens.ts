// Signing keys and access tokens. Keys are imported once into CryptoKeys; a
// verified token's claims are cached by its exact text until it expires,
// because signature verification is the most expensive step of a request.
import { createHash, createPrivateKey, createPublicKey, randomBytes, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { encodeBase64Url } from 'hono/utils/encode';
import { verify as verifyJws } from 'hono/utils/jwt/jwt';
import { signing } from 'hono/utils/jwt/jws';

export type SigningAlg = 'EdDSA' | 'ES256';
const ALLOWED_ALGS: readonly SigningAlg[] = ['EdDSA', 'ES256'];

type PublicJwk = { kty: string; crv: string; x: string; y?: string; kid: string; alg: SigningAlg; use: 'sig' };

export type KeyRing = {
  signing: { kid: string; alg: SigningAlg; key: CryptoKey };
  verifying: Map<string, { alg: SigningAlg; key: CryptoKey }>;
  jwks: { keys: PublicJwk[] };
};

export type AccessClaims = {
  iss: string;
  aud: string;
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  roles: string[];
};

export class InvalidTokenError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidTokenError';
  }
}

function algOf(key: KeyObject): { alg: SigningAlg; params: EcKeyImportParams | Algorithm } {
  if (key.asymmetricKeyType === 'ed25519') return { alg: 'EdDSA', params: { name: 'Ed25519' } };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { alg: 'ES256', params: { name: 'ECDSA', namedCurve: 'P-256' } };
  }
  throw new Error(`unsupported JWT key type ${key.asymmetricKeyType}: use Ed25519 or P-256`);
}

/** RFC 7638 thumbprint: a stable kid derived from the public key itself. */
function thumbprint(jwk: JsonWebKey): string {
  const members =
    jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** Parse a PEM or a JWK (JSON) string into a KeyObject. */
function parseKey(text: string, type: 'private' | 'public'): KeyObject {
  const t = text.trim();
  if (t.startsWith('{')) {
    const jwk = JSON.parse(t) as NodeJwk;
    return type === 'private' ? createPrivateKey({ key: jwk, format: 'jwk' }) : createPublicKey({ key: jwk, format: 'jwk' });
  }
  return type === 'private' ? createPrivateKey(t) : createPublicKey(t);
}

/** JWT_PUBLIC_KEYS: a JWKS, a JSON array of JWKs, or concatenated PEM blocks. */
function parsePublicKeys(text: string): KeyObject[] {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    const parsed = JSON.parse(t) as { keys?: NodeJwk[] } | NodeJwk[];
    const list = Array.isArray(parsed) ? parsed : (parsed.keys ?? [parsed as NodeJwk]);
    return list.map((k) => createPublicKey({ key: k, format: 'jwk' }));
  }
  const blocks = t.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
  return blocks.map((b) => createPublicKey(b));
}

async function publicEntry(pub: KeyObject) {
  const { alg, params } = algOf(pub);
  const jwk = pub.export({ format: 'jwk' }) as JsonWebKey;
  const kid = thumbprint(jwk);
  const key = await crypto.subtle.importKey('jwk', jwk, params, false, ['verify']);
  const published: PublicJwk = { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, ...(jwk.y ? { y: jwk.y } : {}), kid, alg, use: 'sig' };
  return { kid, alg, key, published };
}

export async function buildKeyRing(privateKeyText: string, publicKeysText?: string): Promise<KeyRing> {
  const priv = parseKey(privateKeyText, 'private');
  const { alg, params } = algOf(priv);
  const privJwk = priv.export({ format: 'jwk' }) as JsonWebKey;
  const signingKey = await crypto.subtle.importKey('jwk', privJwk, params, false, ['sign']);
  const own = await publicEntry(createPublicKey(priv));
  const verifying = new Map<string, { alg: SigningAlg; key: CryptoKey }>([[own.kid, { alg, key: own.key }]]);
  const jwks: PublicJwk[] = [own.published];
  for (const pub of publicKeysText ? parsePublicKeys(publicKeysText) : []) {
    const e = await publicEntry(pub);
    if (verifying.has(e.kid)) continue;
    verifying.set(e.kid, { alg: e.alg, key: e.key });
    jwks.push(e.published);
  }
  return { signing: { kid: own.kid, alg, key: signingKey }, verifying, jwks: { keys: jwks } };
}

/**
 * The configured key, or (outside production) a development key generated once
 * into DATA_DIR so that tokens survive a restart.
 */
export async function loadKeyRing(opts: {
  privateKey: string | undefined;
  publicKeys: string | undefined;
  dataDir: string;
}): Promise<KeyRing> {
  if (opts.privateKey) return buildKeyRing(opts.privateKey, opts.publicKeys);
  const file = join(opts.dataDir, 'jwt-private.pem');
  if (!existsSync(file)) {
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  }
  return buildKeyRing(readFileSync(file, 'utf8'), opts.publicKeys);
}

const b64json = (v: unknown) => encodeBase64Url(new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer).replace(/=+$/, '');

export async function signAccessToken(ring: KeyRing, claims: AccessClaims): Promise<string> {
  // hono's sign() writes no kid for a CryptoKey, so the header is built here and
  // only the signature is delegated to hono's JWS helper.
  const head = `${b64json({ alg: ring.signing.alg, typ: 'JWT', kid: ring.signing.kid })}.${b64json(claims)}`;
  const sig = await signing(ring.signing.key, ring.signing.alg, new TextEncoder().encode(head));
  return `${head}.${encodeBase64Url(sig).replace(/=+$/, '')}`;
}

export const newRefreshToken = () => randomBytes(32).toString('base64url');
export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('hex');

const CLOCK_SKEW_SECONDS = 30;
const MAX_TOKEN_LENGTH = 4096;
/** The only spelling accepted: three unpadded base64url segments (RFC 7515 compact form). */
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
    const { sub, sid, jti, iat, exp, roles, iss, aud } = payload;
    if (typeof exp !== 'number' || exp + CLOCK_SKEW_SECONDS <= now) throw new InvalidTokenError('expired');
    if (typeof iat !== 'number' || iat > now + CLOCK_SKEW_SECONDS) throw new InvalidTokenError('issued in the future');
    if (exp - iat > maxLifetime) throw new InvalidTokenError('lives longer than access tokens are issued for');
    if (typeof payload.nbf === 'number' && payload.nbf > now + CLOCK_SKEW_SECONDS) throw new InvalidTokenError('not yet valid');
    if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string') {
      throw new InvalidTokenError('missing claims');
    }
    // Ids are UUIDs everywhere else; anything else would reach the database as a bad cast.
    if (!UUID.test(sub) || !UUID.test(sid)) throw new InvalidTokenError('sub or sid is not a UUID');
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) throw new InvalidTokenError('bad roles');
    const claims: AccessClaims = { iss: iss as string, aud: aud as string, sub, sid, jti, iat, exp, roles };
    cache.set(token, claims, { ttl: Math.max(1, (exp + CLOCK_SKEW_SECONDS - now) * 1000) });
    return claims;
  };
  return Object.assign(verify, { known });
}
