// TOTP (RFC 6238) with the otpauth library: SHA-1, 6 digits, 30-second steps,
// one step either side accepted. What this module adds is the step a code
// matched, so the caller can let each step be used once.
import { Secret, TOTP } from 'otpauth';

const PERIOD = 30;
const DIGITS = 6;

export const newTotpSecret = (): string => new Secret({ size: 20 }).base32;

function totpOf(secret: string, label = '', issuer = ''): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: DIGITS, period: PERIOD, secret: Secret.fromBase32(secret) });
}

/** The otpauth:// URI an authenticator app scans (as a QR code) or takes pasted. */
export function totpUri(secret: string, account: string, issuer: string): string {
  return totpOf(secret, account, issuer).toString();
}

/** The time step (counter) a code belongs to at `now`, or null when it matches none within ±1 step. */
export function matchTotp(secret: string, code: string, now: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = totpOf(secret).validate({ token: code, timestamp: now, window: 1 });
  return delta === null ? null : Math.floor(now / 1000 / PERIOD) + delta;
}

/** A code for tests and tools (the service itself only checks codes). */
export const totpCode = (secret: string, now: number): string => totpOf(secret).generate({ timestamp: now });
