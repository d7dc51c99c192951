// Per-client request limit (per user when signed in, per address otherwise).
// The counter was incremented by the auth middleware's store round trip; this
// applies it: RateLimit-* headers on every response, 429 past the limit.
import { createMiddleware } from 'hono/factory';
import { problem } from '../../lib/problem.js';
import { setResponseHeaders } from '../../lib/node-fast-path.js';
import type { WindowCount } from '../../store/store.js';
import type { AuthVariables } from '../../middleware/app-env.js';

/**
 * How many hits of one client an instance may count in process before the
 * shared counter must see them (a Redis store flushes them at least every
 * 100 ms anyway): 1% of the limit, so that N instances admit at most
 * limit + N × 1% in one window; below 100, every hit is counted in Redis.
 */
export const localHitBatch = (limit: number): number => Math.floor(limit / 100);

export function rateHeaders(limit: number, rate: WindowCount): Record<string, string> {
  return {
    'RateLimit-Limit': String(limit),
    'RateLimit-Remaining': String(Math.max(0, limit - rate.count)),
    'RateLimit-Reset': String(Math.max(1, Math.ceil(rate.resetMs / 1000))),
  };
}

export const rateLimit = (opts: { limit: number; onReject: () => void }) =>
  // Sets no variable; reads the count the auth middleware fetched.
  createMiddleware<{ Variables: Pick<AuthVariables, 'rate'> }>((c, next) => {
    const rate = c.get('rate');
    if (rate) {
      const headers = rateHeaders(opts.limit, rate);
      setResponseHeaders(c, headers);
      if (rate.count > opts.limit) {
        opts.onReject();
        problem('rate_limited', 'Too many requests: slow down', {
          headers: { ...headers, 'Retry-After': headers['RateLimit-Reset']! },
        });
      }
    }
    return next();
  });
