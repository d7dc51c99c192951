// Opaque tokens (refresh tokens, mailed verification and reset tokens): 256
// random bits, base64url; only their SHA-256 is stored, so a database read does
// not yield a usable token.
import { createHash, randomBytes } from 'node:crypto';

export const newOpaqueToken = () => randomBytes(32).toString('base64url');
export const hashOpaqueToken = (token: string) => createHash('sha256').update(token).digest('hex');

export const newRefreshToken = newOpaqueToken;
export const hashRefreshToken = hashOpaqueToken;
