// Domain events: what changed, as a service says it inside the transaction of
// the change (EventOutbox.tx's `emit`). Relays react to them after the commit.

export type DomainEvent =
  /** Sessions ended (logout, a reused refresh token, ended by user or admin, password change or reset, MFA changes). */
  | { type: 'session.revoked'; sessionIds: string[] }
  /** A user's roles as of the commit. */
  | { type: 'user.roles_changed'; userId: string; roles: string[] }
  /** A user is gone, and the sessions that were live with them. */
  | { type: 'user.deleted'; userId: string; sessionIds: string[] }
  /** A role was created, deleted, or its permissions changed. */
  | { type: 'roles.permissions_changed' };

export type EventType = DomainEvent['type'];

const TYPES: ReadonlySet<string> = new Set<EventType>([
  'session.revoked',
  'user.roles_changed',
  'user.deleted',
  'roles.permissions_changed',
]);

/** An event read back from the outbox; null when it is not one this version knows (a newer instance wrote it). */
export function parseEvent(type: string, payload: string): DomainEvent | null {
  if (!TYPES.has(type)) return null;
  try {
    const e = JSON.parse(payload) as DomainEvent;
    return e?.type === type ? e : null;
  } catch {
    return null;
  }
}
