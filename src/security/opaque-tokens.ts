// Opaque tokens (refresh tokens today): 256 random bits, base64url; only their
// SHA-256 is stored, so a database read does not yield a usable token.
import { createHash, randomBytes } from 'node:crypto';

export const newRefreshToken = () => randomBytes(32).toString('base64url');
export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('hex');
