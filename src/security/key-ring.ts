// Signing keys: parsed once from PEM or JWK into WebCrypto keys, with RFC 7638
// thumbprints as kids and the public JWKS; outside production development keys
// are generated once into DATA_DIR so that tokens survive a restart.
// Two families live here, kept apart: the API's own access-token key (Ed25519
// or P-256; `signing`/`verifying`) and the OpenID provider's keys (RSA for
// RS256, P-256 for ES256 ID tokens, and the API's Ed25519 key for EdDSA ID
// tokens; `provider`). The API's verifier never looks at the provider's map.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey as NodeJwk,
  type KeyObject,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type SigningAlg = 'EdDSA' | 'ES256';
export const ALLOWED_ALGS: readonly SigningAlg[] = ['EdDSA', 'ES256'];

/** What the provider signs with: ID tokens in any of these, its access tokens in RS256. */
export type ProviderAlg = 'RS256' | 'ES256' | 'EdDSA';

/** The smallest RSA modulus accepted (RFC 7518 3.3 asks for 2048 bits or more). */
export const MIN_RSA_BITS = 2048;

type PublicJwk = {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  kid: string;
  alg: SigningAlg | 'RS256';
  use: 'sig';
};

type SignKey<A extends string> = { kid: string; alg: A; key: CryptoKey };

export type KeyRing = {
  /** The API's own access tokens. */
  signing: SignKey<SigningAlg>;
  verifying: Map<string, { alg: SigningAlg; key: CryptoKey }>;
  /** The OpenID provider's keys: one per algorithm it signs with, and every key its signatures verify against. */
  provider: {
    signing: { RS256: SignKey<'RS256'>; ES256?: SignKey<'ES256'>; EdDSA?: SignKey<'EdDSA'> };
    verifying: Map<string, { alg: ProviderAlg; key: CryptoKey }>;
  };
  jwks: { keys: PublicJwk[] };
};

type Kind = { alg: ProviderAlg; params: RsaHashedImportParams | EcKeyImportParams | Algorithm };

function kindOf(key: KeyObject): Kind {
  if (key.asymmetricKeyType === 'ed25519') return { alg: 'EdDSA', params: { name: 'Ed25519' } };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { alg: 'ES256', params: { name: 'ECDSA', namedCurve: 'P-256' } };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new Error(`RSA key of ${bits} bits: use ${MIN_RSA_BITS} bits or more`);
    return { alg: 'RS256', params: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } };
  }
  throw new Error(`unsupported JWT key type ${key.asymmetricKeyType}: use Ed25519, P-256 or RSA`);
}

/** The API's own key: Ed25519 or P-256 only. */
function apiKindOf(key: KeyObject): Kind & { alg: SigningAlg } {
  const kind = key.asymmetricKeyType === 'rsa' ? undefined : kindOf(key);
  if (!kind || kind.alg === 'RS256') throw new Error(`unsupported JWT key type ${key.asymmetricKeyType}: use Ed25519 or P-256`);
  return kind as Kind & { alg: SigningAlg };
}

/** RFC 7638 thumbprint: a stable kid derived from the public key itself (required members, in lexical order). */
function thumbprint(jwk: JsonWebKey): string {
  const members =
    jwk.kty === 'RSA'
      ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
      : jwk.kty === 'EC'
        ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
        : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
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
  const { alg, params } = kindOf(pub);
  const jwk = pub.export({ format: 'jwk' }) as JsonWebKey;
  const kid = thumbprint(jwk);
  const key = await crypto.subtle.importKey('jwk', jwk, params, false, ['verify']);
  const material = jwk.kty === 'RSA' ? { n: jwk.n!, e: jwk.e! } : { crv: jwk.crv!, x: jwk.x!, ...(jwk.y ? { y: jwk.y } : {}) };
  const published: PublicJwk = { kty: jwk.kty!, ...material, kid, alg, use: 'sig' };
  return { kid, alg, key, published };
}

async function privateEntry(priv: KeyObject, kind: Kind) {
  const jwk = priv.export({ format: 'jwk' }) as JsonWebKey;
  const key = await crypto.subtle.importKey('jwk', jwk, kind.params, false, ['sign']);
  const pub = await publicEntry(createPublicKey(priv));
  return { sign: key, pub };
}

export type ProviderKeyTexts = {
  /** RSA, 2048+ bits, PEM or JWK. Absent: an ephemeral key (only tests build a ring so; loadKeyRing always passes one). */
  rsaPrivateKey?: string | undefined;
  /** P-256, PEM or JWK, for ES256 ID tokens. Absent: ES256 is not offered. */
  ecPrivateKey?: string | undefined;
};

export async function buildKeyRing(privateKeyText: string, publicKeysText?: string, providerKeys: ProviderKeyTexts = {}): Promise<KeyRing> {
  const priv = parseKey(privateKeyText, 'private');
  const apiKind = apiKindOf(priv);
  const own = await privateEntry(priv, apiKind);
  const verifying = new Map<string, { alg: SigningAlg; key: CryptoKey }>([[own.pub.kid, { alg: apiKind.alg, key: own.pub.key }]]);
  const providerVerifying = new Map<string, { alg: ProviderAlg; key: CryptoKey }>();
  const jwks: PublicJwk[] = [];
  const publish = (e: Awaited<ReturnType<typeof publicEntry>>) => {
    if (jwks.some((k) => k.kid === e.kid)) return;
    jwks.push(e.published);
    providerVerifying.set(e.kid, { alg: e.alg, key: e.key });
  };

  const rsaKey = providerKeys.rsaPrivateKey
    ? parseKey(providerKeys.rsaPrivateKey, 'private')
    : generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS }).privateKey;
  const rsaKind = kindOf(rsaKey);
  if (rsaKind.alg !== 'RS256') throw new Error('JWT_RSA_PRIVATE_KEY: not an RSA key');
  const rsa = await privateEntry(rsaKey, rsaKind);

  let ec: Awaited<ReturnType<typeof privateEntry>> | undefined;
  if (providerKeys.ecPrivateKey) {
    const ecKey = parseKey(providerKeys.ecPrivateKey, 'private');
    const ecKind = kindOf(ecKey);
    if (ecKind.alg !== 'ES256') throw new Error('JWT_EC_PRIVATE_KEY: not a P-256 key');
    ec = await privateEntry(ecKey, ecKind);
  }

  // The API's key first, as before the provider's keys joined (a JWKS's order means nothing to a client).
  publish(own.pub);
  publish(rsa.pub);
  if (ec) publish(ec.pub);
  for (const pub of publicKeysText ? parsePublicKeys(publicKeysText) : []) {
    const e = await publicEntry(pub);
    // Earlier API keys keep verifying the API's tokens; every earlier key keeps verifying the provider's.
    if (e.alg !== 'RS256' && !verifying.has(e.kid)) verifying.set(e.kid, { alg: e.alg, key: e.key });
    publish(e);
  }

  return {
    signing: { kid: own.pub.kid, alg: apiKind.alg, key: own.sign },
    verifying,
    provider: {
      signing: {
        RS256: { kid: rsa.pub.kid, alg: 'RS256', key: rsa.sign },
        ...(ec ? { ES256: { kid: ec.pub.kid, alg: 'ES256' as const, key: ec.sign } } : {}),
        ...(apiKind.alg === 'EdDSA' ? { EdDSA: { kid: own.pub.kid, alg: 'EdDSA' as const, key: own.sign } } : {}),
      },
      verifying: providerVerifying,
    },
    jwks: { keys: jwks },
  };
}

/** The key in `text`, or else the one in DATA_DIR/`file`, generated there (0600) the first time. */
function keyText(text: string | undefined, dataDir: string, file: string, generate: () => KeyObject): string {
  if (text) return text;
  const path = join(dataDir, file);
  if (!existsSync(path)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(path, generate().export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
    } catch (err) {
      // Another process (a second instance on the same DATA_DIR) wrote it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return readFileSync(path, 'utf8');
}

/**
 * The configured keys, or (outside production) development keys generated
 * once into DATA_DIR so that tokens survive a restart. In production the
 * configuration requires JWT_PRIVATE_KEY and JWT_RSA_PRIVATE_KEY; without
 * JWT_EC_PRIVATE_KEY there, ES256 is simply not offered.
 */
export async function loadKeyRing(opts: {
  privateKey: string | undefined;
  publicKeys: string | undefined;
  rsaPrivateKey?: string | undefined;
  ecPrivateKey?: string | undefined;
  production?: boolean;
  dataDir: string;
}): Promise<KeyRing> {
  const generate = !opts.production;
  const own = keyText(opts.privateKey, opts.dataDir, 'jwt-private.pem', () => generateKeyPairSync('ed25519').privateKey);
  const rsa =
    opts.rsaPrivateKey || generate
      ? keyText(
          opts.rsaPrivateKey,
          opts.dataDir,
          'jwt-rsa-private.pem',
          () => generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS }).privateKey,
        )
      : undefined;
  const ec =
    opts.ecPrivateKey || generate
      ? keyText(opts.ecPrivateKey, opts.dataDir, 'jwt-ec-private.pem', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)
      : undefined;
  if (rsa === undefined) throw new Error('JWT_RSA_PRIVATE_KEY: required when NODE_ENV=production');
  return buildKeyRing(own, opts.publicKeys, { rsaPrivateKey: rsa, ecPrivateKey: ec });
}
