// Bearer authentication. Every request gets a caller: anonymous (guest rights)
// without a token, the token's user otherwise. A request that sends a token is
// judged by it, even on guest routes. The session/roles lookup and the rate
// limit hit share one store round trip, so the rate-limit middleware only
// applies the count fetched here. Failed verifications are counted per
// address; past the per-client limit, a token this instance has not already
// verified is refused before any signature check (forged tokens cost nothing).
import { createMiddleware } from 'hono/factory';
import { problem } from '../../lib/problem.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import { resolveCaller, type CallerContext, type StoreRead } from '../../access/caller.js';
import { InvalidTokenError, type AccessClaims, type TokenVerifier } from '../../security/access-tokens.js';
import { oauthAccessRevoked, oauthClientRevoked, storeKeys } from '../../store/store.js';
import type { AuthVariables, ClientIpVariables } from '../../middleware/app-env.js';
import { localHitBatch } from './rate-limit.js';
import type { RouteIndex } from '../../middleware/route-meta.js';

const BEARER = /^Bearer +(\S+) *$/i;

const NO_READS: readonly StoreRead[] = [];
const OAUTH_ACCESS = 'oauth.access';
const OAUTH_CLIENT = 'oauth.client';

/**
 * A provider access token's tombstones, read in the caller's one round trip:
 * its tokens in this session revoked, or its client deleted.
 */
function tombstoneReads(claims: AccessClaims & { clientId: string }): StoreRead[] {
  const client: StoreRead = { name: OAUTH_CLIENT, key: () => storeKeys.oauthClient(claims.clientId) };
  // A service client's token has no session: only its client's marker (deleted, or a secret-change epoch).
  if (claims.service === true) return [client];
  return [{ name: OAUTH_ACCESS, key: () => storeKeys.oauthAccess(claims.sid, claims.clientId) }, client];
}

/** The rate-limit bucket: the user, the service client, or the address. */
const rateKeyOf = (claims: AccessClaims | null, ip: string) =>
  claims === null ? storeKeys.rateOfAddress(ip) : storeKeys.rate(claims.service === true ? `c:${claims.sub}` : `u:${claims.sub}`);

export const authenticate = (opts: {
  verify: TokenVerifier;
  callers: CallerContext;
  /** The surface's declared routes: the matched one's storeReads join the round trip. */
  routes: RouteIndex;
  rateWindowMs: number;
  /** The per-client limit: also how many failed verifications an address may have in the window. */
  rateLimit: number;
  onFlood?: () => void;
}) =>
  createMiddleware<{ Variables: AuthVariables & ClientIpVariables }>(async (c, next) => {
    const header = requestHeader(c, 'authorization');
    let claims: AccessClaims | null = null;
    if (header !== undefined) {
      const ip = c.get('clientIp');
      const token = BEARER.exec(header)?.[1];
      claims = token === undefined ? null : (opts.verify.known(token) ?? null);
      if (claims === null) {
        const failures = await opts.callers.store.peek(storeKeys.tokenFailures(ip));
        if (failures.count > opts.rateLimit) {
          opts.onFlood?.();
          problem('rate_limited', 'Too many invalid tokens from this address: try again later', {
            headers: { 'Retry-After': String(Math.max(1, Math.ceil(failures.resetMs / 1000))) },
            audit: 'invalid_token_flood',
          });
        }
        try {
          if (token === undefined) throw new InvalidTokenError('not a Bearer token');
          claims = await opts.verify(token);
        } catch (err) {
          if (!(err instanceof InvalidTokenError)) throw err;
          // Bad tokens are not free: they count against the address's requests and its failures.
          const [rate] = await Promise.all([
            opts.callers.store.hit(storeKeys.rateOfAddress(ip), opts.rateWindowMs),
            opts.callers.store.hit(storeKeys.tokenFailures(ip), opts.rateWindowMs),
          ]);
          c.set('rate', rate);
          problem('invalid_token', 'The access token is invalid or expired', {
            headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
          });
        }
      }
    }
    c.set('claims', claims);
    const rateKey = rateKeyOf(claims, c.get('clientIp'));
    // A revoked session throws invalid_token here, like a bad token.
    const routeReads = opts.routes.of(c)?.meta.storeReads ?? NO_READS;
    const provider = claims?.clientId !== undefined;
    const { caller, rate, values } = await resolveCaller(
      opts.callers,
      claims,
      { key: rateKey, windowMs: opts.rateWindowMs, batch: localHitBatch(opts.rateLimit) },
      provider ? [...routeReads, ...tombstoneReads(claims as AccessClaims & { clientId: string })] : routeReads,
    );
    if (
      provider &&
      (oauthAccessRevoked(values[OAUTH_ACCESS], claims!.iat) ||
        oauthClientRevoked(values[OAUTH_CLIENT], claims!.iat, claims!.service === true))
    ) {
      problem('invalid_token', 'The access token has been revoked', {
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      });
    }
    c.set('caller', caller);
    c.set('rate', rate);
    c.set('storeValues', values);
    await next();
  });
