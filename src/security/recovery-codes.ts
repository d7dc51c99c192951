// Recovery codes: 80 random bits each, shown once as xxxx-xxxx-xxxx-xxxx
// (base32, no ambiguous case), stored only as SHA-256. With 80 bits a plain
// hash is enough: a stolen table cannot be searched for the codes.
import { createHash, randomBytes } from 'node:crypto';

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** The canonical form of a code as a user may type it (any case, spaces or dashes), or null. */
export function normalizeRecoveryCode(input: string): string | null {
  const c = input.toLowerCase().replace(/[\s-]/g, '');
  return /^[a-z2-7]{16}$/.test(c) ? c : null;
}

export const hashRecoveryCode = (normalized: string) => createHash('sha256').update(`recovery:${normalized}`).digest('hex');

/** A new set: the codes to show once, and the hashes to store. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: count }, () => base32(randomBytes(10)).match(/.{4}/g)!.join('-'));
  return { codes, hashes: codes.map((c) => hashRecoveryCode(normalizeRecoveryCode(c)!)) };
}
