// TEMPORARY stand-in for verifyIdTokenHint of src/provider/jwt.ts (helper "keys"):
// same name and signature; delete this file once that one is on main.
// An ID token this provider issued, expired or not: signature and issuer checked.
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import type { AppServices } from '../deps.js';

export async function verifyIdTokenHint(
  svc: Pick<AppServices, 'keyRing' | 'config'>,
  token: string,
): Promise<{ sub: string; sid?: string; aud: string[] } | null> {
  try {
    const { payload } = await compactVerify(token, createLocalJWKSet(svc.keyRing.jwks as unknown as JSONWebKeySet));
    const claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
    if (claims.iss !== svc.config.publicUrl || typeof claims.sub !== 'string') return null;
    const aud =
      typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud.filter((a) => typeof a === 'string') : [];
    return { sub: claims.sub, ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}), aud };
  } catch {
    return null;
  }
}
