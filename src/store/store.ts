// The shared key/value store: rate-limit and brute-force counters, session
// liveness, cached user roles and the role-permission version. Redis when
// several instances share it, an in-process map for a single instance.
import { limitKeyOf } from '../lib/ip.js';

/** A fixed-window counter after an increment (or a peek). */
export type WindowCount = { count: number; resetMs: number };

/** One store round trip: several reads plus, optionally, one counter increment. */
export type BatchRequest = {
  gets: string[];
  /**
   * One fixed-window hit. `batch`: how many hits of this key the store may
   * count in process before it must count in the shared counter (rate
   * limits; 0 or absent: every hit is counted there at once).
   */
  hit?: { key: string; windowMs: number; batch?: number };
};
export type BatchResult = { values: (string | null)[]; hit?: WindowCount };
export type Reservation = { ok: boolean; counts: WindowCount[] };

export interface Store {
  readonly kind: 'redis' | 'memory';
  /**
   * Writes this store could not make since it opened (Redis unreachable: they
   * are dropped, not thrown). Whoever must know its writes landed (the event
   * outbox) compares it before and after writing.
   */
  readonly failedWrites: number;
  /** Several reads and one counter increment in one round trip (one script call on Redis). */
  batch(req: BatchRequest): Promise<BatchResult>;
  get(key: string): Promise<string | null>;
  /** Read and delete in one step: of several callers on any instance, one gets the value (single-use tokens, challenges). */
  take(key: string): Promise<string | null>;
  /** Returns false when `nx` was asked and the key already existed. */
  set(key: string, value: string, opts?: { ttlMs?: number; nx?: boolean }): Promise<boolean>;
  /** Set several keys at once (each overwritten), all with one TTL. */
  setMany(entries: [string, string][], ttlMs: number): Promise<void>;
  del(...keys: string[]): Promise<void>;
  incr(key: string): Promise<number>;
  /** Increment a fixed-window counter: the window starts with the first hit. */
  hit(key: string, windowMs: number): Promise<WindowCount>;
  /** Read a fixed-window counter without incrementing it. */
  peek(key: string): Promise<WindowCount>;
  /**
   * Atomically, across every instance: when any counter is at its limit,
   * change nothing (`ok: false`); otherwise count one on each. Counts are
   * after the call, in the order given; a counter's window starts with its first count.
   */
  reserve(counters: { key: string; limit: number }[], windowMs: number): Promise<Reservation>;
  /** Take one count back (the attempt was not a failure after all); never below zero, window kept. */
  release(key: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Store keys, in one place so that every writer and reader agrees. */
export const storeKeys = {
  session: (sid: string) => `s:${sid}`,
  userRoles: (userId: string) => `ur:${userId}`,
  /** The user's public profile (the User shape without roles), for GET /users/me. */
  userProfile: (userId: string) => `up:${userId}`,
  /**
   * A random token replaced after every role or role-permission change: each
   * instance's role cache is valid while it is unchanged (random, not a
   * counter, so that a flushed store can never bring an old value back).
   */
  rolesVersion: 'rv',
  /**
   * A feature's named version of data it keeps in process (a list's first
   * page, say), replaced by the feature after every write of that data: each
   * instance's copy is valid while it is unchanged. Random, as rolesVersion.
   */
  version: (name: string) => `v:${name}`,
  rate: (client: string) => `rl:${client}`,
  /** The request count of an anonymous client: keys built from an address count per limitKeyOf (IPv6: its /64). */
  rateOfAddress: (ip: string) => `rl:ip:${limitKeyOf(ip)}`,
  /** Failed access-token verifications from one address, in the rate-limit window. */
  tokenFailures: (ip: string) => `tf:${limitKeyOf(ip)}`,
  /** Failed sign-ins of an account from an address, within the account's current lockout epoch. */
  loginAccount: (email: string, ip: string, epoch: string) => `lf:a:${epoch}:${limitKeyOf(ip)}:${email}`,
  /** Failed sign-ins of an account from every address, within its current lockout epoch. */
  loginAccountTotal: (email: string, epoch: string) => `lf:t:${epoch}:${email}`,
  /** Replaced by a password reset: every account+address counter of the old epoch stops counting. */
  loginEpoch: (email: string) => `lf:e:${email}`,
  /** Mails of one kind sent to one address in the current hour, asked for by any client (the shared ceiling). */
  mailAddress: (kind: string, email: string) => `ml:${kind}:${email}`,
  /** Mails of one kind sent to one address in the current hour, asked for by one client. */
  mailClient: (kind: string, email: string, ip: string) => `ml:c:${kind}:${limitKeyOf(ip)}:${email}`,
  loginIp: (ip: string) => `lf:ip:${limitKeyOf(ip)}`,
  /** A pending MFA sign-in step, by the SHA-256 of its mfaToken (taken when it is traded for tokens). */
  mfaToken: (tokenHash: string) => `mfa:t:${tokenHash}`,
  /** Set while the owner has been told of a reused TOTP code (one mail per user per window). */
  mfaReuseNotice: (userId: string) => `mfa:r:${userId}`,
  /** Wrong codes given for one mfaToken. */
  mfaFailures: (tokenHash: string) => `mfa:f:${tokenHash}`,
  /** A WebAuthn ceremony's challenge and what it is for, until one response takes it. */
  webauthnChallenge: (challenge: string) => `wa:c:${challenge}`,
  /**
   * Set to OAUTH_ACCESS_REVOKED when every provider access token of this client in
   * this session is revoked (grant revoked, refresh token reused, ...), or to the revocation's
   * time (ms, as text) when those issued up to then are; outlives them (access TTL + 120 s). See oauthAccessRevoked.
   */
  oauthAccess: (sid: string, clientId: string) => `oa:${sid}:${clientId}`,
  /**
   * OAUTH_CLIENT_DELETED once the client is gone (every token of it refused), or a
   * change epoch (milliseconds, as text): its client_credentials tokens issued before it are refused.
   */
  oauthClient: (clientId: string) => `oc:${clientId}`,
  /**
   * A service client's current roles (JSON array), as the database holds them:
   * what its client_credentials tokens are judged by. Written after every change
   * of the client (oauth.client_changed), deleted with the client; filled on a miss.
   */
  clientRoles: (clientId: string) => `cr:${clientId}`,
  /** An authorization request waiting for the user to sign in or consent (JSON, 10 minutes): src/provider/interactions.ts. */
  oauthInteraction: (id: string) => `oi:${id}`,
} as const;

/**
 * The keys an instance may serve from memory while Redis tells it of every
 * change (near-cache): session liveness, roles, profiles, the roles version and the features' named versions.
 * Prefixes of store keys; none is a prefix of another (Redis requires it).
 */
export const NEAR_CACHED_PREFIXES = ['s:', 'ur:', 'up:', 'rv', 'v:'] as const;

export function isNearCached(key: string): boolean {
  return key === 'rv' || key.startsWith('v:') || key.startsWith('s:') || key.startsWith('ur:') || key.startsWith('up:');
}

/**
 * Values of the session key: the user id of a live session (bound to `sub` as
 * the database check is: a token naming another user is not vouched for), or
 * the tombstone, which outlives every access token of the session.
 */
export const sessionAlive = (userId: string) => userId;
export const SESSION_REVOKED = '0';

/** Values of the provider's tombstones (storeKeys.oauthAccess, storeKeys.oauthClient). */
export const OAUTH_ACCESS_REVOKED = 'revoked';
export const OAUTH_CLIENT_DELETED = 'deleted';
/**
 * Whether a (session, client) tombstone refuses a token issued at `iat`
 * (seconds): OAUTH_ACCESS_REVOKED refuses all of them, a revocation time (ms,
 * as text) those issued up to it, so that a later sign-in of the same session
 * to the same client works (iat is whole seconds: that very second is refused too).
 */
export const oauthAccessRevoked = (value: string | null | undefined, iat: number): boolean =>
  value !== null && value !== undefined && (value === OAUTH_ACCESS_REVOKED || !(iat * 1000 > Number(value)));
/**
 * Whether a client's marker (storeKeys.oauthClient) refuses a token issued at
 * `iat` (seconds): the client deleted refuses all; a change epoch (ms) refuses
 * the client's own client_credentials tokens (`service`) issued before it.
 */
export const oauthClientRevoked = (value: string | null | undefined, iat: number, service: boolean): boolean =>
  value === OAUTH_CLIENT_DELETED || (service && value !== null && value !== undefined && iat * 1000 < Number(value));
/** How long a provider tombstone outlives the access tokens it refuses. */
export const oauthTombstoneTtlMs = (accessTtlSeconds: number) => (accessTtlSeconds + 120) * 1000;
