// Signing keys: parsed once from PEM or JWK into WebCrypto keys, with RFC 7638
// thumbprints as kids and the public JWKS; outside production a development key
// is generated once into DATA_DIR so that tokens survive a restart.
import { createHash, createPrivateKey, createPublicKey, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type SigningAlg = 'EdDSA' | 'ES256';
export const ALLOWED_ALGS: readonly SigningAlg[] = ['EdDSA', 'ES256'];

type PublicJwk = { kty: string; crv: string; x: string; y?: string; kid: string; alg: SigningAlg; use: 'sig' };

export type KeyRing = {
  signing: { kid: string; alg: SigningAlg; key: CryptoKey };
  verifying: Map<string, { alg: SigningAlg; key: CryptoKey }>;
  jwks: { keys: PublicJwk[] };
};

function algOf(key: KeyObject): { alg: SigningAlg; params: EcKeyImportParams | Algorithm } {
  if (key.asymmetricKeyType === 'ed25519') return { alg: 'EdDSA', params: { name: 'Ed25519' } };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { alg: 'ES256', params: { name: 'ECDSA', namedCurve: 'P-256' } };
  }
  throw new Error(`unsupported JWT key type ${key.asymmetricKeyType}: use Ed25519 or P-256`);
}

/** RFC 7638 thumbprint: a stable kid derived from the public key itself. */
function thumbprint(jwk: JsonWebKey): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
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
