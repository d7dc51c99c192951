// Secrets kept at rest (TOTP secrets) are sealed with AES-256-GCM under
// MFA_ENCRYPTION_KEY: a database dump alone does not yield a working second
// factor. Keys listed in MFA_PREVIOUS_ENCRYPTION_KEYS still open what they
// sealed, so the key can be rotated (mfa.reseal.ts seals everything again). Outside production, a key is generated once into DATA_DIR (like the
// development JWT key), so `npm start` needs no configuration.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { parseMfaKey } from '../config.js';

const VERSION = 'v1';

export type SecretBox = {
  seal(plain: string, context: string): string;
  /** Throws when the sealed text was not made by one of the keys for this context. */
  open(sealed: string, context: string): string;
  /** The same, and whether a previous key made it (it should be sealed again under the current one). */
  openChecked(sealed: string, context: string): { plain: string; stale: boolean };
  /** How many previous keys still open what they sealed (MFA_PREVIOUS_ENCRYPTION_KEYS). */
  readonly previousKeys: number;
  /** A keyed digest (HMAC-SHA256 under a key derived for it): stable decoys that reveal nothing. */
  mac(text: string): Buffer;
};

function openWith(key: Buffer, sealed: string, context: string): string {
  const [version, iv, body, tag] = sealed.split('.');
  if (version !== VERSION || !iv || body === undefined || !tag) throw new Error('not a sealed secret');
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  d.setAAD(Buffer.from(context, 'utf8'));
  d.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
}

/**
 * `context` (the owner's id) is bound as additional data: a sealed secret
 * copied onto another user's row does not open there. `key` seals; it and the
 * `previous` keys open (a key rotation: GCM's tag tells a wrong key).
 */
export function secretBox(key: Buffer, previous: readonly Buffer[] = []): SecretBox {
  for (const k of [key, ...previous]) if (k.length !== 32) throw new Error('the MFA encryption key must be 32 bytes');
  const macKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'auth-system mac', 32));
  const openChecked = (sealed: string, context: string) => {
    try {
      return { plain: openWith(key, sealed, context), stale: false };
    } catch (err) {
      for (const k of previous) {
        try {
          return { plain: openWith(k, sealed, context), stale: true };
        } catch {
          // not this one either
        }
      }
      throw err;
    }
  };
  return {
    mac: (text) => createHmac('sha256', macKey).update(text, 'utf8').digest(),
    seal(plain, context) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return [VERSION, iv.toString('base64url'), body.toString('base64url'), c.getAuthTag().toString('base64url')].join('.');
    },
    open: (sealed, context) => openChecked(sealed, context).plain,
    openChecked,
    previousKeys: previous.length,
  };
}

/** The configured key, or (outside production; config refuses it there) one generated once into DATA_DIR. */
export function loadSecretBox(opts: { key: string | undefined; previousKeys?: readonly string[]; dataDir: string }): SecretBox {
  const previous = (opts.previousKeys ?? []).map((text) => {
    const k = parseMfaKey(text);
    if (!k) throw new Error('MFA_PREVIOUS_ENCRYPTION_KEYS holds a key that is not 32 bytes');
    return k;
  });
  if (opts.key) {
    const key = parseMfaKey(opts.key);
    if (!key) throw new Error('MFA_ENCRYPTION_KEY is not 32 bytes');
    return secretBox(key, previous);
  }
  const file = join(opts.dataDir, 'mfa-key');
  if (!existsSync(file)) {
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(file, 0o600);
    } catch (err) {
      // Another instance on the same DATA_DIR wrote it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const key = parseMfaKey(readFileSync(file, 'utf8'));
  if (!key) throw new Error(`${file} does not hold a 32-byte key`);
  return secretBox(key, previous);
}
