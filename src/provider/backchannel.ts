// OpenID Connect Back-Channel Logout 1.0: when a session ends, every client
// with a backchannelLogoutUri that the session signed into (its
// oauth_authorizations rows) gets a logout token. A delivery row per (session,
// client) is queued in the transaction that ends the session, so it exists
// exactly when the end does; the back-channel sender (src/adapters/backchannel)
// signs the token at send time and POSTs it off the request path.
import { randomUUID } from 'node:crypto';
import { and, eq, inArray, isNotNull } from 'drizzle-orm';
import { SignJWT } from 'jose';
import type { AppServices } from '../deps.js';
import { backchannelDeliveries, oauthAuthorizations, oauthClients } from '../db/schema.js';
import type { Tx } from '../db/tx.js';
import type { Emit } from '../events/outbox.js';
import type { ProviderAlg } from '../security/key-ring.js';

/** The event a logout token carries (Back-Channel Logout 1.0 §2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A logout token lives this long: long enough for one POST, short enough that a leaked one is soon useless (the spec says about 2 minutes). */
export const LOGOUT_TOKEN_TTL_SECONDS = 120;

/** A queued delivery is given up this long after its session ended, whatever the attempts. */
export const BACKCHANNEL_MAX_AGE_MS = 24 * 3600_000;

/**
 * Inside the transaction that ended these sessions: queue a delivery for each
 * (session, client with a backchannelLogoutUri) the sessions signed into, and
 * the event that wakes the sender after the commit. Returns how many were queued.
 */
export async function queueBackchannelLogouts(tx: Tx, emit: Emit, sessionIds: readonly string[], now: Date): Promise<number> {
  if (sessionIds.length === 0) return 0;
  const links = await tx
    .selectDistinct({
      sessionId: oauthAuthorizations.sessionId,
      userId: oauthAuthorizations.userId,
      clientId: oauthAuthorizations.clientId,
    })
    .from(oauthAuthorizations)
    .innerJoin(oauthClients, eq(oauthClients.id, oauthAuthorizations.clientId))
    .where(and(inArray(oauthAuthorizations.sessionId, [...sessionIds]), isNotNull(oauthClients.backchannelLogoutUri)));
  if (links.length === 0) return 0;
  const expiresAt = new Date(now.getTime() + BACKCHANNEL_MAX_AGE_MS);
  const queued = await tx
    .insert(backchannelDeliveries)
    .values(links.map((l) => ({ ...l, createdAt: now, expiresAt, nextAttemptAt: now })))
    // A session ends once; this only guards a replayed end.
    .onConflictDoNothing()
    .returning({ id: backchannelDeliveries.id });
  if (queued.length) await emit({ type: 'backchannel.requested', deliveries: queued.length });
  return queued.length;
}

/** What a logout token says (Back-Channel Logout 1.0 §2.4). */
export type LogoutTokenSubject = { clientId: string; sessionId: string; userId: string; alg: ProviderAlg };

/**
 * Sign a logout token: header typ logout+jwt, the client's ID-token algorithm
 * (RS256 when this provider has no key for it), iss, aud (the client), iat,
 * exp, jti, sub, sid and the back-channel logout event; never a nonce.
 */
export async function signLogoutToken(svc: Pick<AppServices, 'keyRing' | 'config' | 'clock'>, s: LogoutTokenSubject): Promise<string> {
  const keys = svc.keyRing.provider.signing;
  const alg: ProviderAlg = keys[s.alg] ? s.alg : 'RS256';
  const key = keys[alg] ?? keys.RS256;
  const iat = Math.floor(svc.clock() / 1000);
  return new SignJWT({
    sub: s.userId,
    sid: s.sessionId,
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
  })
    .setProtectedHeader({ alg, typ: 'logout+jwt', kid: key.kid })
    .setIssuer(svc.config.publicUrl)
    .setAudience(s.clientId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + LOGOUT_TOKEN_TTL_SECONDS)
    .setJti(randomUUID())
    .sign(key.key);
}
