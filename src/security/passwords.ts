// argon2id password hashing, off the event loop (the library's async API runs
// on libuv's thread pool), with re-hash detection when parameters change.
import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import pLimit from 'p-limit';
import { Problem, problem } from '../lib/problem.js';

export type Argon2Params = { memoryCost: number; timeCost: number; parallelism: number };

// @node-rs/argon2's Algorithm is a const enum (absent at run time under tsx).
const ARGON2ID = 2;

/** NIST SP 800-63B: compare and hash the NFKC form, so equivalent Unicode input matches. */
export const normalizePassword = (pw: string) => pw.normalize('NFKC');

/**
 * How many argon2 computations may run at once by default: one per core plus
 * one, so that a core does not sit idle while the event loop hands it the next
 * job (the runs that chose it: test/bench/README.md, scenario 3). More only
 * oversubscribes the CPU that the event loop, the database and Redis share,
 * and multiplies the 19 MiB each computation holds. The jobs run on libuv's
 * thread pool (UV_THREADPOOL_SIZE, 4 by default), so at least one pool thread
 * stays free for the rest (file reads, DNS, WebCrypto signatures).
 */
export function defaultArgon2Concurrency(cores = availableParallelism(), pool = Number(process.env.UV_THREADPOOL_SIZE) || 4): number {
  return Math.max(1, Math.min(cores + 1, pool - 1));
}

// Process-wide on purpose: the CPU and libuv's thread pool are the process's,
// so two apps in one process (tests) share one queue rather than each
// believing it has every core. The last createApp's settings apply.
const argon2Slots = pLimit(defaultArgon2Concurrency());

/** Set from ARGON2_CONCURRENCY (or the default) when the app starts. */
export function setArgon2Concurrency(n: number): void {
  argon2Slots.concurrency = n;
}

export const argon2Concurrency = (): number => argon2Slots.concurrency;

// A flood of logins must not delay the others without limit: a computation
// that would wait longer than this in the queue is refused (503) instead.
let maxWaitMs = 3_000;
// Recent duration of one computation (exponential moving average), for the wait estimate.
let typicalMs: number | undefined;

/** Set from PASSWORD_QUEUE_MAX_WAIT_MS when the app starts. */
export function setArgon2MaxWait(ms: number): void {
  maxWaitMs = ms;
}

function busy(waitMs: number): Problem {
  return new Problem('service_unavailable', 'Too many sign-ins at once: try again shortly', {
    headers: { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) },
    audit: 'password_queue_full',
  });
}

/** Queue a computation, or refuse it at once when the queue ahead would take longer than allowed. */
function scheduled<T>(job: () => Promise<T>): Promise<T> {
  // Only a job that has to queue waits: with a slot free, nothing is ahead. (Estimating from the
  // typical duration alone refused every check, forever, once one hash had taken longer than the
  // allowed wait: nothing ran, so the estimate never came down.)
  const expected =
    typicalMs === undefined || argon2Slots.activeCount < argon2Slots.concurrency
      ? 0
      : ((argon2Slots.pendingCount + 1) / argon2Slots.concurrency) * typicalMs;
  if (expected > maxWaitMs) return Promise.reject(busy(expected));
  const queued = performance.now();
  const behind = argon2Slots.activeCount >= argon2Slots.concurrency;
  return argon2Slots(async () => {
    const started = performance.now();
    // The estimate can be wrong (a burst of slow hashes): the deadline holds anyway for a job
    // that had to queue (one that found a slot free only waited for the event loop).
    if (behind && started - queued > maxWaitMs) throw busy(started - queued);
    try {
      return await job();
    } finally {
      const took = performance.now() - started;
      typicalMs = typicalMs === undefined ? took : typicalMs * 0.8 + took * 0.2;
    }
  });
}

export function hashPassword(password: string, params: Argon2Params): Promise<string> {
  return scheduled(() => hash(normalizePassword(password), { ...params, algorithm: ARGON2ID }));
}

/** Whether the password matches; throws 503 service_unavailable when the queue is full. */
export function verifyPassword(stored: string, password: string): Promise<boolean> {
  return scheduled(async () => {
    try {
      return await verify(stored, normalizePassword(password));
    } catch {
      return false; // a malformed stored hash never verifies
    }
  });
}

/** True when the stored hash was made with other parameters (or another variant). */
export function needsRehash(stored: string, params: Argon2Params): boolean {
  const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  if (!m) return true;
  return Number(m[1]) !== params.memoryCost || Number(m[2]) !== params.timeCost || Number(m[3]) !== params.parallelism;
}

/**
 * A hash of a random password with the current parameters: unknown emails are
 * verified against it so they cost the same time as a wrong password.
 */
export async function makeDummyHash(params: Argon2Params): Promise<string> {
  const random = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64url');
  return hashPassword(random, params);
}

let common: Set<string> | undefined;

/** Whether the password is on a well-known list of common passwords (case-insensitive). */
export async function isCommonPassword(password: string): Promise<boolean> {
  if (!common) {
    const { dictionary } = await import('@zxcvbn-ts/language-common');
    common = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  }
  return common.has(normalizePassword(password).toLowerCase());
}

/** Refuses a common password with the same error shape as schema validation. */
export async function assertPasswordNotCommon(password: string): Promise<void> {
  if (await isCommonPassword(password)) {
    problem('validation_failed', 'The request body is not valid', {
      errors: [{ path: 'password', message: 'This password is too common; choose another' }],
    });
  }
}
