// Service client tokens (client_credentials) at the introspection and
// revocation endpoints. Such a token has no session and no grant: it is live
// while its client exists, its secret has not changed since it was issued, and
// the client still holds every role the token names (a role taken away ends
// what the token was issued for). Revoking one moves the client's change
// epoch: every client_credentials token it got up to now stops working.
import type { AppServices } from '../deps.js';
import { loadClientRoles, parseClientRoles } from '../access/client-roles.js';
import type { ProviderAccessClaims } from '../security/access-tokens.js';
import { storeKeys } from '../store/store.js';
import { findClient } from './clients.js';
import { providerTokenRevoked, verifyProviderAccessToken } from './jwt.js';

/** A verified provider access token of a service client acting for itself. */
export type ServiceClaims = ProviderAccessClaims & { sid?: undefined };

/** The token's claims if it is a service client's own access token, signature and expiry checked; else null. */
export async function serviceTokenClaims(svc: AppServices, token: string): Promise<ServiceClaims | null> {
  const claims = await verifyProviderAccessToken(svc, token);
  if (!claims || claims.sid !== undefined || claims.sub !== claims.client_id) return null;
  return claims as ServiceClaims;
}

/** Whether the service token is live this very request (the shared store first, the database on a miss). */
export async function serviceTokenLive(svc: AppServices, claims: ServiceClaims): Promise<boolean> {
  if (await providerTokenRevoked(svc, claims)) return false;
  const cached = parseClientRoles(await svc.store.get(storeKeys.clientRoles(claims.client_id)));
  const current = cached ?? (await loadClientRoles(svc.database.db, svc.store, claims.client_id));
  if (current === null) return false;
  return (claims.roles ?? []).every((r) => current.includes(r));
}

/** The introspection answer for a live service token (RFC 7662 2.2). */
export function serviceIntrospection(claims: ServiceClaims): { active: true } & Record<string, unknown> {
  return {
    active: true,
    token_type: 'Bearer',
    scope: claims.scope,
    client_id: claims.client_id,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    jti: claims.jti,
    iat: claims.iat,
    exp: claims.exp,
    roles: claims.roles ?? [],
  };
}

/** Revoke a service client's token (its own only): every client_credentials token it holds now stops working. */
export async function revokeServiceToken(svc: AppServices, clientId: string, claims: ServiceClaims): Promise<void> {
  if (claims.client_id !== clientId) return;
  if (!(await findClient(svc, clientId))) return;
  // The epoch is the change's time: tokens issued up to this second are refused (iat is whole seconds).
  const at = (Math.floor(svc.clock() / 1000) + 1) * 1000;
  await svc.tx(async (_tx, emit) => {
    await emit({ type: 'oauth.client_changed', clientId, deleted: false, at });
  });
}
