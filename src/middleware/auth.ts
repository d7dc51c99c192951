// Bearer authentication. Every request gets a caller: anonymous (guest rights)
// without a token, the token's user otherwise. A request that sends a token is
// judged by it, even on guest routes. The session/roles lookup and the rate
// limit hit share one store round trip, so the rate-limit middleware only
// applies the count fetched here.
import { createMiddleware } from 'hono/factory';
import { problem } from '../lib/problem.js';
import { requestHeader } from '../lib/request-header.js';
import { resolveCaller, type Caller, type CallerContext, type Prefetched } from '../security/caller.js';
import { InvalidTokenError, type AccessClaims, type TokenVerifier } from '../security/tokens.js';
import { keys, type WindowCount } from '../store/store.js';
import { matchedRoute } from './route-meta.js';

export type AuthVariables = {
  clientIp: string;
  caller: Caller;
  claims: AccessClaims | null;
  rate: WindowCount | undefined;
  /** The store keys the route's metadata asked for (`prefetch`), read in the same round trip. */
  prefetched: Prefetched | undefined;
};

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

export const authenticate = (opts: { verify: TokenVerifier; callers: CallerContext; rateWindowMs: number }) =>
  createMiddleware<{ Variables: AuthVariables }>(async (c, next) => {
    const header = requestHeader(c, 'authorization');
    let claims: AccessClaims | null = null;
    if (header !== undefined) {
      const m = BEARER.exec(header);
      try {
        if (!m) throw new InvalidTokenError('not a Bearer token');
        claims = await opts.verify(m[1]!);
      } catch (err) {
        if (!(err instanceof InvalidTokenError)) throw err;
        // Still count the attempt against the address: bad tokens are not free.
        c.set('rate', await opts.callers.store.hit(keys.rate(`ip:${c.get('clientIp')}`), opts.rateWindowMs));
        problem('invalid_token', 'The access token is invalid or expired', {
          headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
        });
      }
    }
    c.set('claims', claims);
    const client = claims ? `u:${claims.sub}` : `ip:${c.get('clientIp')}`;
    // A revoked session throws invalid_token here, like a bad token.
    const { caller, rate, prefetched } = await resolveCaller(
      opts.callers,
      claims,
      { key: keys.rate(client), windowMs: opts.rateWindowMs },
      matchedRoute(c)?.meta.prefetch,
    );
    c.set('caller', caller);
    c.set('rate', rate);
    if (prefetched) c.set('prefetched', prefetched);
    await next();
  });
