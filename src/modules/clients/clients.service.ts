// OAuth clients: registration, change, secret rotation and deletion, through
// the provider's rules (src/provider/clients.ts). Secret changes and deletions
// commit an oauth.client_changed event: tokens issued to the client before stop
// working on the next request, on every instance.
import { and, eq, gte, inArray, lte, sql } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { isUniqueViolation } from '../../db/errors.js';
import { oauthClients, rolePermissions, roles, statsCounters, statsHourly } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import { problem } from '../../lib/problem.js';
import { isStorableTime } from '../../lib/schemas.js';
import {
  clientColumns,
  clientFieldProblems,
  clientsChanged,
  clientOf,
  clientSignInCounter,
  newClientId,
  newClientSecret,
  type ClientFields,
  type ClientRow,
} from '../../provider/clients.js';
import { hashOpaqueToken } from '../../security/opaque-tokens.js';
import { BASE_ROLE, firstNotHeld, SUPER_ROLE, type Grantor } from '../../security/permissions.js';
import { storeKeys } from '../../store/store.js';
import { HOUR_MS, hourOf } from '../../stats/counters.js';
import type { ClientStats, ClientView, CreateClient, UpdateClient } from './clients.schemas.js';

/** What writing clients needs: the API's services, or what start-up has (applying OAUTH_CLIENTS_FILE). */
export type ClientsDeps = Pick<AppServices, 'tx' | 'clock' | 'config' | 'database' | 'store'>;

/** A row in the API's Client shape (built from the schema's fields, never the row: no secret hash). */
export function clientView(row: ClientRow): ClientView {
  const c = clientOf(row);
  return {
    id: c.id,
    name: c.name,
    type: c.type,
    redirectUris: c.redirectUris,
    postLogoutRedirectUris: c.postLogoutRedirectUris,
    grantTypes: c.grantTypes as ClientView['grantTypes'],
    scopes: c.scopes as ClientView['scopes'],
    firstParty: c.firstParty,
    allowedOrigins: c.allowedOrigins,
    idTokenSignedResponseAlg: c.idTokenSignedResponseAlg,
    backchannelLogoutUri: c.backchannelLogoutUri,
    audiences: c.audiences,
    roles: c.roles,
    source: row.source === 'file' ? 'file' : 'api',
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

/** 400 for what no schema says alone: invalid_redirect_uri when a URI is at fault, else validation_failed. */
export function assertClientFields(fields: ClientFields): void {
  const problems = clientFieldProblems(fields);
  if (problems.length === 0) return;
  const errors = problems.map(({ path, message }) => ({ path, message }));
  const uriOnly = problems.every((p) => p.code === 'invalid_redirect_uri');
  if (uriOnly) problem('invalid_redirect_uri', problems[0]!.message, { errors });
  problem('validation_failed', problems.map((p) => `${p.path}: ${p.message}`).join('; '), { errors });
}

/**
 * The roles a client is given exist; with a grantor (the admin API), the
 * grantor holds every permission the newly given roles carry, and only an
 * admin gives `admin` (a delegate never makes a machine more powerful than itself).
 */
async function assertRoles(tx: Tx, wanted: string[], before: string[], grantor: Grantor | null): Promise<void> {
  if (wanted.length === 0) return;
  const known = await tx.select({ name: roles.name }).from(roles).where(inArray(roles.name, wanted));
  const missing = wanted.filter((r) => !known.some((k) => k.name === r));
  if (missing.length) problem('unknown_role', `Unknown role: ${missing.join(', ')}`);
  const added = wanted.filter((r) => !before.includes(r));
  if (grantor === null || added.length === 0) return;
  if (added.includes(SUPER_ROLE) && !grantor.roles.includes(SUPER_ROLE)) {
    problem('forbidden', 'Only a holder of the admin role may give a client the admin role', { audit: 'escalation_refused: admin' });
  }
  const perms = await tx
    .select()
    .from(rolePermissions)
    .where(inArray(rolePermissions.roleName, added))
    .orderBy(rolePermissions.roleName, rolePermissions.permission);
  const over = perms.find((p) => firstNotHeld(grantor, [p.permission]) !== undefined);
  if (over) {
    problem('forbidden', `Giving a client the role ${over.roleName} needs permission ${over.permission}, which you do not hold`, {
      audit: `escalation_refused: ${over.permission}`,
    });
  }
}

/** Judges whether the actor may act on a client holding these roles (see clientGuard). */
export type ClientGuard = (clientRoles: readonly string[]) => void;

/**
 * Delegated administration acts downward on clients too: changing, rotating
 * the secret of or deleting a client needs every permission its roles carry
 * (whoever rotates an admin machine's secret holds its power). Loaded before
 * the transaction, like the users' rule (src/security/delegation.ts).
 */
export async function clientGuard(svc: Pick<AppServices, 'roleCache' | 'store'>, actor: Grantor): Promise<ClientGuard> {
  const permissionsOf = await svc.roleCache.snapshot(await svc.store.get(storeKeys.rolesVersion));
  return (clientRoles) => {
    const missing = firstNotHeld(actor, [...permissionsOf([BASE_ROLE, ...clientRoles])].sort());
    if (missing !== undefined) {
      problem('forbidden', `This client holds permission ${missing}, which you do not hold: you cannot act on it`, {
        audit: `escalation_refused: ${missing}`,
      });
    }
  };
}

const idTaken = (id: string): never =>
  problem('validation_failed', `A client with the id ${id} exists`, { errors: [{ path: 'id', message: 'This client id is taken' }] });

export type CreatedClient = { client: ClientView; clientSecret?: string };

/** Register a client; a confidential one gets a secret, returned this once. */
export async function createClient(
  svc: ClientsDeps,
  grantor: Grantor | null,
  input: CreateClient,
  opts: { source?: 'api' | 'file'; secret?: string } = {},
): Promise<CreatedClient> {
  const { id: givenId, ...rest } = input;
  const id = givenId ?? newClientId();
  const fields: ClientFields = { id, ...rest };
  assertClientFields(fields);
  const generated = fields.type === 'confidential' && opts.secret === undefined ? newClientSecret() : undefined;
  const secretHash =
    fields.type !== 'confidential' ? null : opts.secret !== undefined ? newSecretHash(opts.secret) : (generated?.hash ?? null);
  try {
    const row = await svc.tx(async (tx) => {
      await assertRoles(tx, fields.roles, [], grantor);
      const now = new Date(svc.clock());
      const [created] = await tx
        .insert(oauthClients)
        .values({
          id,
          ...clientColumns(fields),
          secretHash,
          secretChangedAt: secretHash ? now : null,
          source: opts.source ?? 'api',
          createdAt: now,
          updatedAt: now,
        })
        .onConflictDoNothing()
        .returning();
      return created ?? idTaken(id);
    });
    await clientsChanged(svc.store);
    return generated ? { client: clientView(row), clientSecret: generated.secret } : { client: clientView(row) };
  } catch (err) {
    if (isUniqueViolation(err)) idTaken(id);
    throw err;
  }
}

/** A declared secret (OAUTH_CLIENTS_FILE) as stored. */
const newSecretHash = (secret: string) => hashOpaqueToken(secret);

export async function getClient(svc: Pick<AppServices, 'database'>, id: string): Promise<ClientView> {
  const [row] = await svc.database.db.select().from(oauthClients).where(eq(oauthClients.id, id));
  return row ? clientView(row) : problem('client_not_found', `No client ${id}`);
}

/** Keyset cursor over (createdAt, id) of text ids. */
const encode = (row: { createdAt: Date; id: string }) => Buffer.from(`${row.createdAt.getTime()}.${row.id}`, 'utf8').toString('base64url');
function decode(raw: string): { at: Date; id: string } {
  const m = /^(\d{1,15})\.([A-Za-z0-9._-]{3,64})$/.exec(Buffer.from(raw, 'base64url').toString('utf8'));
  const ms = Number(m?.[1]);
  if (!m || !isStorableTime(ms)) {
    problem('validation_failed', 'The cursor is not valid', { errors: [{ path: 'cursor', message: 'Invalid cursor' }] });
  }
  return { at: new Date(ms), id: m[2]! };
}

/** Newest first, `limit` at a time. */
export async function listClients(svc: AppServices, q: { limit: number; cursor?: string | undefined }) {
  const after = q.cursor !== undefined ? decode(q.cursor) : undefined;
  const rows = await svc.database.db
    .select()
    .from(oauthClients)
    .where(after ? sql`(${oauthClients.createdAt}, ${oauthClients.id}) < (${after.at.toISOString()}::timestamptz, ${after.id})` : undefined)
    .orderBy(sql`${oauthClients.createdAt} desc`, sql`${oauthClients.id} desc`)
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return { items: page.map(clientView), nextCursor: rows.length > q.limit && last ? encode(last) : null };
}

/**
 * Replace a client's writable fields. Becoming public drops its secrets (and
 * the tokens issued on them); becoming confidential leaves it without a secret
 * until one is made with POST /admin/clients/:id/secret.
 */
export async function updateClient(
  svc: ClientsDeps,
  grantor: Grantor | null,
  id: string,
  input: UpdateClient,
  opts: { source?: 'api' | 'file'; secret?: string; guard?: ClientGuard } = {},
): Promise<ClientView> {
  const fields: ClientFields = { id, ...input };
  assertClientFields(fields);
  const row = await svc.tx(async (tx, emit) => {
    const [before] = await tx.select().from(oauthClients).where(eq(oauthClients.id, id));
    if (!before) return problem('client_not_found', `No client ${id}`);
    opts.guard?.(clientOf(before).roles);
    await assertRoles(tx, fields.roles, clientOf(before).roles, grantor);
    const now = new Date(svc.clock());
    const secrets: Partial<typeof oauthClients.$inferInsert> = {};
    if (fields.type === 'public' && before.secretHash !== null) {
      Object.assign(secrets, { secretHash: null, previousSecretHash: null, previousSecretExpiresAt: null, secretChangedAt: now });
    } else if (fields.type === 'confidential' && opts.secret !== undefined) {
      // A declared secret (OAUTH_CLIENTS_FILE) that changed replaces the old one at once.
      const hash = newSecretHash(opts.secret);
      if (hash !== before.secretHash) {
        Object.assign(secrets, { secretHash: hash, previousSecretHash: null, previousSecretExpiresAt: null, secretChangedAt: now });
      }
    }
    const [updated] = await tx
      .update(oauthClients)
      .set({ ...clientColumns(fields), ...secrets, ...(opts.source ? { source: opts.source } : {}), updatedAt: now })
      .where(eq(oauthClients.id, id))
      .returning();
    // A secret gone or replaced: the client's client_credentials tokens issued before die.
    // Its roles changed: its tokens are judged by the new ones from the next request (a role taken away: 403).
    const rolesChanged = JSON.stringify([...clientOf(before).roles].sort()) !== JSON.stringify([...fields.roles].sort());
    if (secrets.secretChangedAt) {
      await emit({ type: 'oauth.client_changed', clientId: id, deleted: false, at: now.getTime() });
    } else if (rolesChanged) {
      await emit({ type: 'oauth.client_changed', clientId: id, deleted: false, rolesOnly: true });
    }
    return updated!;
  });
  await clientsChanged(svc.store);
  return clientView(row);
}

/**
 * A new secret for a confidential client. The old one keeps working for
 * OAUTH_SECRET_OVERLAP_SECONDS (default 0: not at all); the client's own
 * client_credentials tokens issued before stop working on the next request.
 */
export async function rotateClientSecret(svc: ClientsDeps, id: string, guard?: ClientGuard): Promise<{ clientSecret: string }> {
  const { secret, hash } = newClientSecret();
  await svc.tx(async (tx, emit) => {
    const [row] = await tx.select().from(oauthClients).where(eq(oauthClients.id, id));
    if (!row) return problem('client_not_found', `No client ${id}`);
    guard?.(clientOf(row).roles);
    if (row.type === 'public') {
      problem('validation_failed', 'A public client has no secret', { errors: [{ path: 'type', message: 'The client is public' }] });
    }
    const now = svc.clock();
    const overlapMs = svc.config.oauth.secretOverlapSeconds * 1000;
    const keepPrevious = overlapMs > 0 && row.secretHash !== null;
    await tx
      .update(oauthClients)
      .set({
        secretHash: hash,
        previousSecretHash: keepPrevious ? row.secretHash : null,
        previousSecretExpiresAt: keepPrevious ? new Date(now + overlapMs) : null,
        secretChangedAt: new Date(now),
        updatedAt: new Date(now),
      })
      .where(eq(oauthClients.id, id));
    await emit({ type: 'oauth.client_changed', clientId: id, deleted: false, at: now });
  });
  await clientsChanged(svc.store);
  return { clientSecret: secret };
}

/** Delete a client: its grants, authorizations, codes and refresh tokens go with it (cascade); its tokens die on the next request. */
export async function deleteClient(svc: ClientsDeps, id: string, guard?: ClientGuard): Promise<void> {
  await svc.tx(async (tx, emit) => {
    const [row] = await tx.select().from(oauthClients).where(eq(oauthClients.id, id));
    if (!row) return problem('client_not_found', `No client ${id}`);
    guard?.(clientOf(row).roles);
    await tx.delete(oauthClients).where(eq(oauthClients.id, id));
    // Its sign-in counts go too: a client registered later under the same id starts from zero.
    const counter = clientSignInCounter(id);
    await tx.delete(statsHourly).where(eq(statsHourly.name, counter));
    await tx.delete(statsCounters).where(eq(statsCounters.name, counter));
    await emit({ type: 'oauth.client_changed', clientId: id, deleted: true, at: svc.clock() });
  });
  await clientsChanged(svc.store);
}

/** The client's sign-ins (code exchanges) per hour, oldest first, the current hour last. */
export async function clientStats(svc: AppServices, id: string, hours: number): Promise<ClientStats> {
  await getClient(svc, id);
  await svc.stats.flush();
  const last = hourOf(svc.clock());
  const first = last - (hours - 1) * HOUR_MS;
  const rows = await svc.database.db
    .select()
    .from(statsHourly)
    .where(
      and(eq(statsHourly.name, clientSignInCounter(id)), gte(statsHourly.hour, new Date(first)), lte(statsHourly.hour, new Date(last))),
    );
  const buckets = Array.from({ length: hours }, (_, i) => ({ start: new Date(first + i * HOUR_MS).toISOString(), signIns: 0 }));
  for (const r of rows) {
    const b = buckets[(r.hour.getTime() - first) / HOUR_MS];
    if (b) b.signIns += Number(r.value);
  }
  return { buckets };
}
