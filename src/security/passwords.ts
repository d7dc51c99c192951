// argon2id password hashing, off the event loop (the library's async API runs
// on libuv's thread pool), with re-hash detection when parameters change.
import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import pLimit from 'p-limit';

export type Argon2Params = { memoryCost: number; timeCost: number; parallelism: number };

// @node-rs/argon2's Algorithm is a const enum (absent at run time under tsx).
const ARGON2ID = 2;

/** NIST SP 800-63B: compare and hash the NFKC form, so equivalent Unicode input matches. */
export const normalizePassword = (pw: string) => pw.normalize('NFKC');

// At most one argon2 computation per core: more only oversubscribes the CPU
// (the event loop, the database and Redis share it) and multiplies the 19 MiB
// each one holds. Waiting callers queue here instead.
const argon2Slots = pLimit(Math.max(1, availableParallelism()));

export function hashPassword(password: string, params: Argon2Params): Promise<string> {
  return argon2Slots(() => hash(normalizePassword(password), { ...params, algorithm: ARGON2ID }));
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await argon2Slots(() => verify(stored, normalizePassword(password)));
  } catch {
    return false; // a malformed stored hash never verifies
  }
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
