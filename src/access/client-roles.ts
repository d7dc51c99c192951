// A service client's current roles as the hot path sees them: read from the
// store in the caller's one round trip, filled from the database on a miss,
// republished by the store relay after every change of the client. So a role
// taken from a client refuses its next request on every instance, with no
// database read per request in steady state.
import { eq } from 'drizzle-orm';
import type { Db } from '../db/connect.js';
import { oauthClients } from '../db/schema.js';
import { storeKeys, type Store } from '../store/store.js';

const ROLES_TTL_MS = 24 * 3600 * 1000;

/** A client's roles; null when it is gone. */
export type ClientRoles = { clientId: string; roles: string[] | null };

/** The roles column's JSON text (or the store's value) as a sorted list; null when it is not one. */
export function parseClientRoles(raw: string | null | undefined): string[] | null {
  if (raw === null || raw === undefined) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) && v.every((r) => typeof r === 'string') ? [...v].sort() : null;
  } catch {
    return null;
  }
}

/** The client's roles from the database (null: no such client), cached without overwriting a newer value. */
export async function loadClientRoles(db: Db, store: Store, clientId: string): Promise<string[] | null> {
  const [row] = await db.select({ roles: oauthClients.roles }).from(oauthClients).where(eq(oauthClients.id, clientId));
  if (!row) return null;
  const roles = parseClientRoles(row.roles) ?? [];
  // NX: a change published while this read ran must win over it.
  await store.set(storeKeys.clientRoles(clientId), JSON.stringify(roles), { ttlMs: ROLES_TTL_MS, nx: true });
  return roles;
}

/** After the database commit: the clients' current roles for every instance (a gone client's key is removed). */
export async function publishClientRoles(store: Store, entries: readonly ClientRoles[]): Promise<void> {
  const present = entries.filter((e) => e.roles !== null);
  const gone = entries.filter((e) => e.roles === null).map((e) => storeKeys.clientRoles(e.clientId));
  await Promise.all([
    present.length
      ? store.setMany(
          present.map((e) => [storeKeys.clientRoles(e.clientId), JSON.stringify(e.roles)]),
          ROLES_TTL_MS,
        )
      : undefined,
    gone.length ? store.del(...gone) : undefined,
  ]);
}
