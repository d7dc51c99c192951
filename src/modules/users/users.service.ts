// Users: profiles, role assignment (with the last-admin rule), listing, and the
// bootstrap admin.
import { and, eq, ilike, inArray, ne, or, type SQL } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { isUniqueViolation } from '../../db/errors.js';
import { newestFirst, olderThan } from '../../db/keyset.js';
import { mailOutbox, rolePermissions, roles, userRoles, users } from '../../db/schema.js';
import { withTx, type Tx } from '../../db/tx.js';
import { cursorOf, pageOf } from '../../lib/keyset-page.js';
import { problem } from '../../lib/problem.js';
import { ALL_PERMISSIONS, SUPER_ROLE, firstNotHeld, type Grantor } from '../../security/permissions.js';
import { mayActOnCheck } from '../../security/delegation.js';
import { assertPasswordNotCommon, hashPassword } from '../../security/passwords.js';
import { assertReauthenticated, type StepUpProof } from '../../signin/codes.js';
import type { UserCaller } from '../../access/caller.js';
import { cacheUserProfile, profileOf } from '../../access/profile-state.js';
import { parseProfile } from './users.cache.js';
import { profileChanged } from '../../events/events.js';
import { writeEvents } from '../../events/outbox.js';
import { mayMail, queueEmailChangedNotice, queueSecurityNotice, queueVerificationMail } from '../auth/email.service.js';
import { removeEveryPasskey } from '../passkeys/passkeys.removal.js';
import type { User } from './users.schemas.js';
import { rolesOf, toUser } from './users.view.js';
import { revokeSessions } from '../sessions/sessions.service.js';
import { createUserWithRoles } from './users.create.js';

type UserRow = typeof users.$inferSelect;

export async function getUser(svc: AppServices, id: string): Promise<User> {
  const [row] = await svc.database.db.select().from(users).where(eq(users.id, id));
  if (!row) problem('not_found', 'No such user');
  const r = await rolesOf(svc.database.db, [id]);
  return toUser(row, r.get(id) ?? []);
}

/**
 * The signed-in user (GET /users/me): profile and roles as the auth middleware
 * already read them from the store, so steady state needs no database query.
 */
export async function getMe(
  svc: AppServices,
  caller: Pick<UserCaller, 'userId' | 'roles'>,
  cached: string | null | undefined,
): Promise<User> {
  const id = caller.userId;
  let profile = parseProfile(cached, id);
  if (!profile) {
    const [row] = await svc.database.db.select().from(users).where(eq(users.id, id));
    if (!row) problem('not_found', 'No such user');
    profile = profileOf(row);
    await cacheUserProfile(svc.store, profile);
  }
  return { ...profile, roles: [...caller.roles].sort() };
}

export async function listUsers(
  svc: AppServices,
  q: { limit: number; cursor?: string | undefined; role?: string | undefined; q?: string | undefined },
): Promise<{ items: User[]; nextCursor: string | null }> {
  const where: SQL[] = [];
  if (q.cursor !== undefined) {
    const c = cursorOf(q.cursor);
    where.push(olderThan(users.createdAt, users.id, c));
  }
  if (q.q) {
    // Parameters, not string building; LIKE wildcards in the input are escaped.
    const pattern = `%${q.q.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
    where.push(or(ilike(users.email, pattern), ilike(users.name, pattern))!);
  }
  if (q.role) {
    where.push(inArray(users.id, svc.database.db.select({ id: userRoles.userId }).from(userRoles).where(eq(userRoles.roleName, q.role))));
  }
  const rows = await svc.database.db
    .select()
    .from(users)
    .where(where.length ? and(...where) : undefined)
    .orderBy(...newestFirst(users.createdAt, users.id))
    .limit(q.limit + 1);
  const r = await rolesOf(
    svc.database.db,
    rows.slice(0, q.limit).map((u) => u.id),
  );
  return pageOf(
    rows,
    q.limit,
    (u) => ({ at: u.createdAt, id: u.id }),
    (u) => toUser(u, r.get(u.id) ?? []),
  );
}

/**
 * 409 last_admin unless someone besides this user holds `admin`. Under
 * SERIALIZABLE, two admins demoting or deleting each other cannot both see the other.
 */
async function assertAnotherAdmin(tx: Tx, userId: string): Promise<void> {
  const others = await tx
    .select({ id: userRoles.userId })
    .from(userRoles)
    .where(and(eq(userRoles.roleName, SUPER_ROLE), ne(userRoles.userId, userId)))
    .limit(1);
  if (others.length === 0) problem('last_admin', 'This is the last admin: make another admin first');
}

/**
 * Replace a user's roles. The last admin keeps `admin`, even against concurrent
 * demotions. Only an admin grants or removes `admin`, nobody grants a role
 * carrying a permission they do not hold themselves, and nobody changes the
 * roles of a user holding a permission they do not hold.
 */
export async function assignRoles(svc: AppServices, grantor: Grantor, userId: string, wanted: string[]): Promise<User> {
  const unique = [...new Set(wanted)];
  const mayActOn = await mayActOnCheck(svc, grantor);
  const result = await svc.tx(async (tx, emit) => {
    const [row] = await tx.select().from(users).where(eq(users.id, userId));
    if (!row) problem('not_found', 'No such user');
    const known = await tx.select({ name: roles.name }).from(roles).where(inArray(roles.name, unique));
    const missing = unique.filter((r) => !known.some((k) => k.name === r));
    if (missing.length) problem('unknown_role', `Unknown role: ${missing.join(', ')}`);
    const current = (await rolesOf(tx, [userId])).get(userId) ?? [];
    const granted = unique.filter((r) => !current.includes(r));
    const removed = current.filter((r) => !unique.includes(r));
    if ((granted.includes(SUPER_ROLE) || removed.includes(SUPER_ROLE)) && !grantor.roles.includes(SUPER_ROLE)) {
      problem('forbidden', 'Only a holder of the admin role may grant or remove the admin role', { audit: 'escalation_refused: admin' });
    }
    mayActOn(current);
    const grantedPerms = granted.length
      ? await tx
          .select()
          .from(rolePermissions)
          .where(inArray(rolePermissions.roleName, granted))
          .orderBy(rolePermissions.roleName, rolePermissions.permission)
      : [];
    const over = grantedPerms.find((p) => firstNotHeld(grantor, [p.permission]) !== undefined);
    if (over) {
      problem('forbidden', `Granting the role ${over.roleName} needs permission ${over.permission}, which you do not hold`, {
        audit: `escalation_refused: ${over.permission}`,
      });
    }
    if (current.includes(SUPER_ROLE) && !unique.includes(SUPER_ROLE)) {
      await assertAnotherAdmin(tx, userId);
    }
    await tx.delete(userRoles).where(eq(userRoles.userId, userId));
    await tx.insert(userRoles).values(unique.map((roleName) => ({ userId, roleName })));
    const [updated] = await tx
      .update(users)
      .set({ updatedAt: new Date(svc.clock()) })
      .where(eq(users.id, userId))
      .returning();
    await emit({ type: 'user.roles_changed', userId, roles: [...unique].sort() }, profileChanged(updated!));
    return updated!;
  });
  return toUser(result, unique);
}

export type UpdateMe = {
  name?: string | undefined;
  email?: string | undefined;
  password?: string | undefined;
  currentPassword?: string | undefined;
  code?: string | undefined;
  /** With a password change: every passkey goes too. */
  removePasskeys?: boolean | undefined;
};

export async function updateMe(
  svc: AppServices,
  caller: { userId: string; sessionId: string; ip: string },
  input: UpdateMe,
): Promise<User> {
  const { userId, sessionId } = caller;
  const db = svc.database.db;
  const [row] = await db.select().from(users).where(eq(users.id, userId));
  if (!row) problem('not_found', 'No such user');
  const sensitive = input.email !== undefined || input.password !== undefined;
  // A user without a password proves a recent sign-in instead, and may so set a first password.
  if (sensitive) await assertReauthenticated(svc, row, input, caller, 'current_password_required');
  if (input.password !== undefined) await assertPasswordNotCommon(input.password);
  const passwordHash = input.password !== undefined ? await hashPassword(input.password, svc.config.argon2) : undefined;
  const now = new Date(svc.clock());
  // A new address is unverified until its link is used; the old one is told.
  const newEmail = input.email !== undefined && input.email !== row.email ? input.email : undefined;
  const verify =
    newEmail !== undefined && svc.config.emailVerification !== 'off' && (await mayMail(svc, 'verify_email', newEmail, { ip: caller.ip }));
  let updated: UserRow;
  try {
    updated = await svc.tx(async (tx, emit) => {
      const [u] = await tx
        .update(users)
        .set({
          ...(input.name !== undefined ? { name: input.name } : {}),
          ...(newEmail !== undefined ? { email: newEmail, emailVerifiedAt: null } : {}),
          ...(passwordHash !== undefined ? { passwordHash } : {}),
          updatedAt: now,
        })
        .where(eq(users.id, userId))
        .returning();
      if (newEmail !== undefined) {
        if (verify) await queueVerificationMail(tx, emit, svc, { id: userId, email: newEmail }, caller.ip, now);
        await queueEmailChangedNotice(tx, emit, svc, row.email, newEmail, caller.ip, now);
      }
      if (passwordHash !== undefined) {
        // A password change ends every other session of the user.
        await revokeSessions(tx, emit, { userId, except: sessionId }, 'password_changed', now);
        if (input.removePasskeys) {
          const { user, removed } = await removeEveryPasskey(tx, userId, now);
          if (removed > 0) {
            await queueSecurityNotice(tx, emit, svc, row.email, 'the password was changed and every passkey was removed', caller.ip, now);
          }
          await emit(profileChanged(user));
          return user;
        }
      }
      await emit(profileChanged(u!));
      return u!;
    });
  } catch (err) {
    if (isUniqueViolation(err)) problem('email_taken', 'That email is already registered');
    throw err;
  }
  const r = await rolesOf(db, [userId]);
  return toUser(updated, r.get(userId) ?? []);
}

/**
 * DELETE /users/me (after the password check) and DELETE /users/:id: the user
 * and, by cascade, their roles, sessions, refresh tokens, mailed tokens and
 * posts. Audit rows keep only the actor id. The last admin stays (under
 * SERIALIZABLE two admins deleting each other cannot both see the other), only
 * an admin deletes an admin, and nobody deletes a user holding a permission
 * they do not hold.
 */
export async function deleteUser(svc: AppServices, deleter: Grantor, userId: string): Promise<void> {
  const mayActOn = await mayActOnCheck(svc, deleter);
  await svc.tx(async (tx, emit) => {
    const [row] = await tx.select({ id: users.id, email: users.email }).from(users).where(eq(users.id, userId));
    if (!row) problem('not_found', 'No such user');
    const held = (await rolesOf(tx, [userId])).get(userId) ?? [];
    if (held.includes(SUPER_ROLE)) {
      if (!deleter.roles.includes(SUPER_ROLE)) {
        problem('forbidden', 'Only a holder of the admin role may delete an admin', { audit: 'escalation_refused: admin' });
      }
      await assertAnotherAdmin(tx, userId);
    }
    mayActOn(held);
    const live = await revokeSessions(tx, emit, { userId }, 'user_deleted', new Date(svc.clock()));
    await tx.delete(users).where(eq(users.id, userId));
    // Mail to the account's address, sent or waiting, goes with it.
    await tx.delete(mailOutbox).where(eq(mailOutbox.toAddress, row.email));
    // Every instance: the sessions are dead, the cached profile and roles gone.
    await emit({ type: 'user.deleted', userId, sessionIds: live });
  });
}

/** DELETE /users/me: the step-up (the current password and a code with TOTP on, or a recent sign-in), then deleteUser. */
export async function deleteMe(
  svc: AppServices,
  caller: Grantor & { userId: string; sessionId: string; ip: string },
  given: StepUpProof,
): Promise<void> {
  const [row] = await svc.database.db.select().from(users).where(eq(users.id, caller.userId));
  if (!row) problem('not_found', 'No such user');
  await assertReauthenticated(svc, row, given, caller);
  await deleteUser(svc, caller, caller.userId);
}

/** Effective permissions of a caller, sorted (GET /users/me). */
export function sortedPermissions(perms: ReadonlySet<string>): string[] {
  return ALL_PERMISSIONS.filter((p) => perms.has(p));
}

/**
 * BOOTSTRAP_ADMIN_*: at start, create this admin if no account holds the
 * address. An existing account is never promoted or changed (someone may have
 * registered the address, or changed their email to it, before this start):
 * unless it already holds `admin` it is left as it is and a warning names the
 * setting. Idempotent, and safe when instances start together: under
 * SERIALIZABLE only one insert commits; the others then find an admin.
 */
export async function ensureBootstrapAdmin(svc: Pick<AppServices, 'database' | 'config' | 'metrics' | 'logger'>): Promise<void> {
  const admin = svc.config.bootstrapAdmin;
  if (!admin) return;
  const db = svc.database.db;
  const holder = async () => (await db.select({ id: users.id }).from(users).where(eq(users.email, admin.email)))[0];
  let existing = await holder();
  if (!existing) {
    const passwordHash = await hashPassword(admin.password, svc.config.argon2);
    const created = await withTx(
      db,
      async (tx) => {
        // The operator chose this address: it counts as verified.
        const u = await createUserWithRoles(
          tx,
          { email: admin.email, name: 'Administrator', passwordHash, emailVerifiedAt: new Date() },
          [SUPER_ROLE],
          { ifEmailFree: true },
        );
        if (!u) return null;
        // Relayed by the event outbox once an instance runs (nobody has cached roles for a new id meanwhile).
        await writeEvents(tx, [{ type: 'user.roles_changed', userId: u.id, roles: [SUPER_ROLE] }]);
        return u.id;
      },
      { retries: svc.metrics.txRetries },
    );
    if (created !== null) return;
    // Taken since the look above (another instance starting, or a registration).
    existing = await holder();
    if (!existing) return;
  }
  const held = await db
    .select({ role: userRoles.roleName })
    .from(userRoles)
    .where(and(eq(userRoles.userId, existing.id), eq(userRoles.roleName, SUPER_ROLE)));
  if (held.length > 0) return;
  // Neither the address nor its owner is logged: the setting is what the operator must look at.
  svc.logger.warn(
    'BOOTSTRAP_ADMIN_EMAIL: an account that is not an admin already holds this address; it was not promoted or changed, and no bootstrap admin was created (remove the setting, or choose an address no account holds)',
  );
}
