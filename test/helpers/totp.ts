// TOTP codes for tests, computed with RFC 6238's own algorithm (node:crypto
// HMAC-SHA1, RFC 4226's dynamic truncation), independent of the library the
// service uses, so a test checks the service against the standard.
import { createHmac } from 'node:crypto';

export const STEP_MS = 30_000;

/** RFC 6238 with SHA-1, 6 digits, 30 s steps (RFC 4226's dynamic truncation). */
export function rfc6238(base32Secret: string, atMs: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of base32Secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => Number.parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(atMs / STEP_MS)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}
