// Brute-force protection for every place that checks a password. The attempt
// is counted before the (slow) verification and settled after it, atomically
// per account+address, per address and per account (across every address) on
// every instance, so a parallel burst gets exactly as many guesses as the
// limits allow, not one per request. Addresses count as limitKeyOf says (IPv6 per /64).
import { randomUUID } from 'node:crypto';
import type { AuditDetail } from '../lib/audit-details.js';
import { problem } from '../lib/problem.js';
import { storeKeys, type Store } from '../store/store.js';

export type AttemptLimits = { maxFailures: number; ipMaxFailures: number; accountMaxFailures: number; windowSeconds: number };

export type AttemptContext = {
  store: Store;
  limits: AttemptLimits;
  /** Called once for every attempt refused by the limits. */
  onLocked?: () => void;
};

/** The sign-in limits from an app's runtime (every check of a user's password shares them). */
export const passwordAttempts = (svc: {
  store: Store;
  config: { login: AttemptLimits };
  metrics: { rateLimited: { inc(labels: { limiter: string }): void } };
}): AttemptContext => ({
  store: svc.store,
  limits: svc.config.login,
  onLocked: () => svc.metrics.rateLimited.inc({ limiter: 'login' }),
});

/**
 * Verify a password for this account from this address, within the limits:
 * past any limit the attempt is refused with 429 (even a right password),
 * without verifying. A failed verification stays counted; a success clears
 * the account+address counter and gives its count back to the address and to
 * the account's total (failures from elsewhere stay counted: the ceiling is
 * against many addresses guessing); an attempt that could not be verified at
 * all (verify threw) is given back too.
 */
export async function verifyWithinLimits(
  ctx: AttemptContext,
  who: { email: string; ip: string },
  verify: () => Promise<boolean>,
  audit: Extract<AuditDetail, `${string}_locked`> = 'login_locked',
  /**
   * Whether a success forgives the account's earlier failures (default yes).
   * A right password of a user with a second factor does not: the sign-in is
   * not over, and wrong codes would otherwise be forgiven by signing in again.
   */
  forgive: () => boolean = () => true,
): Promise<boolean> {
  const { maxFailures, ipMaxFailures, accountMaxFailures, windowSeconds } = ctx.limits;
  const epoch = (await ctx.store.get(storeKeys.loginEpoch(who.email))) ?? '0';
  const accountKey = storeKeys.loginAccount(who.email, who.ip, epoch);
  const ipKey = storeKeys.loginIp(who.ip);
  const totalKey = storeKeys.loginAccountTotal(who.email, epoch);
  const counters = [
    { key: accountKey, limit: maxFailures },
    { key: ipKey, limit: ipMaxFailures },
    { key: totalKey, limit: accountMaxFailures },
  ];
  const r = await ctx.store.reserve(counters, windowSeconds * 1000);
  if (!r.ok) {
    const blocking = r.counts.filter((w, i) => w.count >= counters[i]!.limit);
    const retry = Math.max(1, Math.ceil(Math.max(...blocking.map((w) => w.resetMs)) / 1000));
    ctx.onLocked?.();
    problem('rate_limited', 'Too many failed attempts: try again later', {
      headers: { 'Retry-After': String(retry) },
      audit,
    });
  }
  let ok: boolean;
  try {
    ok = await verify();
  } catch (err) {
    await Promise.all([ctx.store.release(accountKey), ctx.store.release(ipKey), ctx.store.release(totalKey)]);
    throw err;
  }
  // Failures before this success no longer count for the account from this address.
  if (ok) {
    await Promise.all([
      forgive() ? ctx.store.del(accountKey) : ctx.store.release(accountKey),
      ctx.store.release(ipKey),
      ctx.store.release(totalKey),
    ]);
  }
  return ok;
}

/**
 * Clear the account's lockout from every address (a password reset proved the
 * owner): counters are keyed by an epoch, and a new epoch starts from zero.
 * The epoch outlives the window, so old counters have expired when it lapses.
 */
export async function clearAccountLockout(ctx: AttemptContext, email: string): Promise<void> {
  await ctx.store.set(storeKeys.loginEpoch(email), randomUUID(), { ttlMs: ctx.limits.windowSeconds * 2000 });
}
