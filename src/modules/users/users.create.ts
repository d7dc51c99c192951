// Creating an account with its roles, in the caller's transaction: a
// registration, the first-run admin (POST /setup/admin) and the bootstrap
// admin at start all go through here. Kept apart from users.service so the
// auth and setup modules need nothing else of it.
import { userRoles, users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';

type UserRow = typeof users.$inferSelect;

export type NewUser = {
  email: string;
  name: string;
  /** Null for an account made through an identity provider (no password until the user sets one). */
  passwordHash: string | null;
  /** Set when the address needs no link to count as verified (chosen by the operator). */
  emailVerifiedAt?: Date;
  /** createdAt and updatedAt (the service's clock); the database's now() without it. */
  at?: Date;
};

/** The user and their roles. A taken address is a unique violation, or with `ifEmailFree` null. */
export async function createUserWithRoles(tx: Tx, user: NewUser, roleNames: readonly string[]): Promise<UserRow>;
export async function createUserWithRoles(
  tx: Tx,
  user: NewUser,
  roleNames: readonly string[],
  opts: { ifEmailFree: true },
): Promise<UserRow | null>;
export async function createUserWithRoles(
  tx: Tx,
  user: NewUser,
  roleNames: readonly string[],
  opts: { ifEmailFree?: boolean } = {},
): Promise<UserRow | null> {
  const insert = tx.insert(users).values({
    email: user.email,
    name: user.name,
    passwordHash: user.passwordHash,
    ...(user.emailVerifiedAt ? { emailVerifiedAt: user.emailVerifiedAt } : {}),
    ...(user.at ? { createdAt: user.at, updatedAt: user.at } : {}),
  });
  const [u] = await (opts.ifEmailFree ? insert.onConflictDoNothing() : insert).returning();
  if (!u) return null;
  if (roleNames.length) await tx.insert(userRoles).values(roleNames.map((roleName) => ({ userId: u.id, roleName })));
  return u;
}
