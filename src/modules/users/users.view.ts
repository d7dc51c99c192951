// A user as the API shows it, built from the row and the user's roles: what
// the users, auth and setup modules answer with. Apart from users.service.ts so
// that the mail flows (modules/auth/email.service.ts), which users.service
// calls, need not import it back.
import { inArray } from 'drizzle-orm';
import type { Db } from '../../db/connect.js';
import { userRoles, type users } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import { profileOf } from '../../access/profile-state.js';
import type { User } from './users.schemas.js';

type UserRow = typeof users.$inferSelect;

export function toUser(row: UserRow, roleNames: readonly string[]): User {
  const p = profileOf(row);
  return {
    id: p.id,
    email: p.email,
    emailVerified: p.emailVerified,
    name: p.name,
    roles: [...roleNames].sort(),
    mfa: p.mfa,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
}

export async function rolesOf(db: Db | Tx, userIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(userIds.map((id) => [id, []]));
  if (userIds.length === 0) return out;
  const rows = await db.select().from(userRoles).where(inArray(userRoles.userId, userIds));
  for (const r of rows) out.get(r.userId)?.push(r.roleName);
  return out;
}
