// Domain events: what changed, as a service says it inside the transaction of
// the change (svc.tx's `emit`). Relays react to them after the commit.
import type { MailKind } from '../adapters/mail/templates.js';
import { profileOf, type CachedProfile, type ProfileRow } from '../access/profile-state.js';

export type DomainEvent =
  /** Sessions ended (logout, a reused refresh token, ended by user or admin, password change or reset, MFA changes). */
  | { type: 'session.revoked'; sessionIds: string[] }
  /** A user's roles as of the commit. */
  | { type: 'user.roles_changed'; userId: string; roles: string[] }
  /** A user is gone, and the sessions that were live with them. */
  | { type: 'user.deleted'; userId: string; sessionIds: string[] }
  /** A role was created, deleted, or its permissions changed. */
  | { type: 'roles.permissions_changed' }
  /**
   * A user's profile changed (name, address, its verification, second factors).
   * `profile`, as of the commit, goes only to the writer's fast path: the
   * stored event names the user (no personal data kept in the outbox), and a
   * late relay reads the row.
   */
  | { type: 'user.profile_changed'; userId: string; profile?: CachedProfile }
  /** A mail was written to the mail outbox in this transaction: the mail sender looks for it. */
  | { type: 'mail.requested'; kind: MailKind }
  /** Every provider access token of these clients in these sessions is revoked (grant revoked, code or refresh token reused). */
  | {
      type: 'oauth.access_revoked';
      pairs: { sessionId: string; clientId: string }[];
      /** The revocation's time (ms, svc.clock()): tokens issued after it stay good; unset: every token of the pairs. */
      at?: number;
    }
  /**
   * An OAuth client was deleted (every token of it refused), or its secret or
   * roles changed (its client_credentials tokens issued before `at`, the
   * change's time in ms (svc.clock()), refused; unset: when the store hears of it).
   * `rolesOnly`: only its roles changed; its tokens stay, judged by the new roles.
   * Every kind republishes the client's current roles (storeKeys.clientRoles).
   */
  | { type: 'oauth.client_changed'; clientId: string; deleted: boolean; at?: number; rolesOnly?: boolean }
  /** Back-channel logout deliveries were queued in this transaction: the back-channel sender looks for them. */
  | { type: 'backchannel.requested'; deliveries: number };

export type EventType = DomainEvent['type'];

/** Every type this version relays. */
export const KNOWN: readonly EventType[] = [
  'session.revoked',
  'user.roles_changed',
  'user.deleted',
  'roles.permissions_changed',
  'user.profile_changed',
  'mail.requested',
  'oauth.access_revoked',
  'oauth.client_changed',
  'backchannel.requested',
];

const TYPES: ReadonlySet<string> = new Set<string>(KNOWN);

/** A user's row as a change left it: the event that publishes its profile. */
export const profileChanged = (row: ProfileRow): DomainEvent => ({ type: 'user.profile_changed', userId: row.id, profile: profileOf(row) });

/** The event as the outbox table keeps it. */
export function storedForm(e: DomainEvent): DomainEvent {
  return e.type === 'user.profile_changed' ? { type: e.type, userId: e.userId } : e;
}

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
