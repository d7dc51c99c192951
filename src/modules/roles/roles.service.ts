// Roles and their permissions. Every change is committed with a
// roles.permissions_changed event, which replaces the roles version in the
// store (src/events), so every instance's role cache reloads on its next request.
import { count, eq, inArray } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import type { Db } from '../../db/connect.js';
import { isUniqueViolation } from '../../db/errors.js';
import { rolePermissions, roles, userRoles } from '../../db/schema.js';
import { withTx, type Tx, type TxOptions } from '../../db/tx.js';
import { problem } from '../../lib/problem.js';
import {
  ALL_PERMISSIONS,
  BUILT_IN_DEFAULTS,
  BUILT_IN_ROLES,
  mayHold,
  PERMISSIONS,
  SUPER_ROLE,
  firstNotHeld,
  isPermission,
  type Grantor,
  type Permission,
} from '../../security/permissions.js';
import { rolesOf } from '../users/users.view.js';
import type { Role } from './roles.schemas.js';

/** Seed the built-in roles with their defaults, once; later edits are kept. Safe to run concurrently. */
export async function ensureBuiltInRoles(db: Db, retries: TxOptions['retries']): Promise<void> {
  await withTx(
    db,
    async (tx) => {
      const created = await tx
        .insert(roles)
        .values(BUILT_IN_ROLES.map((name) => ({ name, description: BUILT_IN_DEFAULTS[name].description, builtIn: true })))
        .onConflictDoNothing()
        .returning({ name: roles.name });
      const rows = created
        .filter((r) => r.name !== SUPER_ROLE)
        .flatMap((r) =>
          BUILT_IN_DEFAULTS[r.name as keyof typeof BUILT_IN_DEFAULTS].permissions.map((permission) => ({ roleName: r.name, permission })),
        );
      if (rows.length) await tx.insert(rolePermissions).values(rows).onConflictDoNothing();
    },
    { retries: retries },
  );
}

export function listPermissions() {
  return { items: ALL_PERMISSIONS.map((name) => ({ name, description: PERMISSIONS[name] })) };
}

function assertKnownPermissions(perms: string[]): Permission[] {
  const unknown = perms.filter((p) => !isPermission(p));
  if (unknown.length) problem('unknown_permission', `Unknown permission: ${unknown.join(', ')}`);
  return [...new Set(perms as Permission[])].sort();
}

/** Nobody adds to a role a permission they do not hold; guest never holds one outside GUEST_ALLOWED. */
function assertMayAdd(grantor: Grantor, role: string, added: Permission[], all: Permission[] = added): void {
  const unsafe = all.find((p) => !mayHold(role, p));
  if (unsafe) {
    problem('forbidden', `The guest role cannot hold ${unsafe}: every anonymous caller would have it`, {
      audit: `escalation_refused: ${unsafe}`,
    });
  }
  const missing = firstNotHeld(grantor, added);
  if (missing) {
    problem('forbidden', `Adding ${missing} to a role needs permission ${missing}, which you do not hold`, {
      audit: `escalation_refused: ${missing}`,
    });
  }
}

/** What the role effectively holds: guest only what is allowed for anyone, whatever older rows say. */
const effectivePermissions = (role: string, perms: Permission[]): Permission[] =>
  role === SUPER_ROLE ? ALL_PERMISSIONS : perms.filter((p) => mayHold(role, p));

async function describeRoles(db: Db | Tx, names?: string[]): Promise<Role[]> {
  const roleRows = await (names ? db.select().from(roles).where(inArray(roles.name, names)) : db.select().from(roles)).orderBy(
    roles.createdAt,
    roles.name,
  );
  const filter = names ? inArray(rolePermissions.roleName, names) : undefined;
  const permRows = await db.select().from(rolePermissions).where(filter);
  const counts = await db
    .select({ role: userRoles.roleName, n: count() })
    .from(userRoles)
    .where(names ? inArray(userRoles.roleName, names) : undefined)
    .groupBy(userRoles.roleName);
  return roleRows.map((r) => ({
    name: r.name,
    description: r.description,
    permissions: effectivePermissions(
      r.name,
      permRows
        .filter((p) => p.roleName === r.name)
        .map((p) => p.permission)
        .filter(isPermission)
        .sort(),
    ),
    builtIn: r.builtIn,
    userCount: Number(counts.find((c) => c.role === r.name)?.n ?? 0),
  }));
}

export const listRoles = async (svc: AppServices) => ({ items: await describeRoles(svc.database.db) });

export async function createRole(
  svc: AppServices,
  grantor: Grantor,
  input: { name: string; description?: string | undefined; permissions?: string[] | undefined },
): Promise<Role> {
  const perms = assertKnownPermissions(input.permissions ?? []);
  assertMayAdd(grantor, input.name, perms);
  try {
    await svc.tx(async (tx, emit) => {
      await tx.insert(roles).values({ name: input.name, description: input.description ?? '', createdAt: new Date(svc.clock()) });
      if (perms.length) await tx.insert(rolePermissions).values(perms.map((permission) => ({ roleName: input.name, permission })));
      await emit({ type: 'roles.permissions_changed' });
    });
  } catch (err) {
    if (isUniqueViolation(err)) problem('role_exists', `The role ${input.name} already exists`);
    throw err;
  }
  return (await describeRoles(svc.database.db, [input.name]))[0]!;
}

export async function setRolePermissions(svc: AppServices, grantor: Grantor, name: string, permissions: string[]): Promise<Role> {
  const perms = assertKnownPermissions(permissions);
  await svc.tx(async (tx, emit) => {
    const [role] = await tx.select().from(roles).where(eq(roles.name, name));
    if (!role) problem('not_found', `No role named ${name}`);
    if (role.name === SUPER_ROLE) problem('role_locked', 'The admin role always holds every permission');
    const held = await tx.select({ p: rolePermissions.permission }).from(rolePermissions).where(eq(rolePermissions.roleName, name));
    const before = new Set(held.map((h) => h.p));
    assertMayAdd(
      grantor,
      name,
      perms.filter((p) => !before.has(p)),
      perms,
    );
    await tx.delete(rolePermissions).where(eq(rolePermissions.roleName, name));
    if (perms.length) await tx.insert(rolePermissions).values(perms.map((permission) => ({ roleName: name, permission })));
    await emit({ type: 'roles.permissions_changed' });
  });
  return (await describeRoles(svc.database.db, [name]))[0]!;
}

export async function deleteRole(svc: AppServices, name: string): Promise<void> {
  await svc.tx(async (tx, emit) => {
    const [role] = await tx.select().from(roles).where(eq(roles.name, name));
    if (!role) problem('not_found', `No role named ${name}`);
    if (role.builtIn) problem('role_locked', 'Built-in roles cannot be deleted');
    const rows = await tx.select({ userId: userRoles.userId }).from(userRoles).where(eq(userRoles.roleName, name));
    await tx.delete(roles).where(eq(roles.name, name)); // memberships cascade
    const members = rows.map((r) => r.userId);
    const current = await rolesOf(tx, members);
    await emit(
      { type: 'roles.permissions_changed' },
      ...members.map((userId) => ({ type: 'user.roles_changed' as const, userId, roles: (current.get(userId) ?? []).sort() })),
    );
  });
}
