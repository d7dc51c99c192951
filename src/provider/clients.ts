// OAuth clients as the provider sees them: a registered row read into the
// `Client` shape, and client authentication at the token-side endpoints
// (RFC 6749 §2.3). Secrets are 256 random bits, so they are stored as SHA-256
// and compared in constant time.
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { oauthClients } from '../db/schema.js';
import { hashOpaqueToken, newOpaqueToken } from '../security/opaque-tokens.js';
import { oauthError } from '../lib/oauth-error.js';
import { storeKeys, type Store } from '../store/store.js';

/** Who a token-side request says it is, as the OAuth surface read it (RFC 6749 §2.3.1). */
export type ClientCredentials =
  | { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; clientSecret: string }
  | { method: 'none'; clientId: string };

export type ClientType = 'confidential' | 'public';
export type IdTokenAlg = 'RS256' | 'ES256' | 'EdDSA';

export type OAuthClient = {
  id: string;
  name: string;
  type: ClientType;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: string[];
  scopes: string[];
  firstParty: boolean;
  allowedOrigins: string[];
  idTokenSignedResponseAlg: IdTokenAlg;
  backchannelLogoutUri: string | null;
  audiences: string[];
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
};

type ClientRow = typeof oauthClients.$inferSelect;

const list = (text: string): string[] => {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
};

export function clientOf(row: ClientRow): OAuthClient {
  return {
    id: row.id,
    name: row.name,
    type: row.type === 'public' ? 'public' : 'confidential',
    redirectUris: list(row.redirectUris),
    postLogoutRedirectUris: list(row.postLogoutRedirectUris),
    grantTypes: list(row.grantTypes),
    scopes: list(row.scopes),
    firstParty: row.firstParty,
    allowedOrigins: list(row.allowedOrigins),
    idTokenSignedResponseAlg: (['RS256', 'ES256', 'EdDSA'] as const).find((a) => a === row.idTokenSignedResponseAlg) ?? 'RS256',
    backchannelLogoutUri: row.backchannelLogoutUri,
    audiences: list(row.audiences),
    roles: list(row.roles),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

const CLIENT_ID = /^[A-Za-z0-9._-]{3,64}$/;

/*
 * Client rows kept in process, per store (one per app instance): an entry is
 * valid while the store's named version `oauth.clients` is the one read before
 * the row was, and every client write replaces that version after its commit
 * (clientsChanged), so every instance reads a changed client (a rotated secret,
 * a deleted client) on its next request. The version is read first, so a row
 * read while a write commits is kept under the version the write replaces.
 * Without a version (store emptied or unreachable) the database is read.
 * MAX_AGE_MS bounds what a write outside the service (SQL by an operator) leaves.
 */
const CLIENTS_VERSION = storeKeys.version('oauth.clients');
const MAX_AGE_MS = 60_000;
const MAX_ENTRIES = 1_000;

type CachedClient = { version: string; tombstone: string | null | undefined; at: number; row: ClientRow; client: OAuthClient };
const clientCaches = new WeakMap<Store, Map<string, CachedClient>>();

/** After a client write commits (or OAUTH_CLIENTS_FILE is applied): every instance's cached clients are out of date. */
export async function clientsChanged(store: Pick<Store, 'set'>): Promise<void> {
  await store.set(CLIENTS_VERSION, randomUUID());
}

/**
 * The clients version and, for client authentication, the client's tombstone
 * (storeKeys.oauthClient: a secret change or deletion, published before the
 * write is answered). The version travels by invalidation message, which may
 * reach another instance a few milliseconds after the write was answered; the
 * tombstone is read from the store itself, so a secret replaced with no overlap
 * is refused on the very next request anywhere. One store round trip at most.
 */
async function cacheKeys(store: Store, id: string, strict: boolean): Promise<{ version: string | null; tombstone?: string | null }> {
  try {
    const { values } = strict
      ? await store.batch({ gets: [CLIENTS_VERSION, storeKeys.oauthClient(id)] })
      : { values: [await store.get(CLIENTS_VERSION)] };
    const version = values[0] ?? null;
    // The first request after the store was emptied: a version for the next ones (kept if another instance set one).
    if (version === null) await store.set(CLIENTS_VERSION, randomUUID(), { nx: true });
    return strict ? { version, tombstone: values[1] ?? null } : { version };
  } catch {
    // store unreachable: the database decides
    return { version: null };
  }
}

type ClientLookupDeps = Pick<AppServices, 'database' | 'store' | 'clock'>;

/** The registered client with this id, or null (an id that cannot be one is not looked up). */
export async function findClient(svc: ClientLookupDeps, id: string): Promise<OAuthClient | null> {
  return (await findClientRow(svc, id, false)).client;
}

async function findClientRow(svc: ClientLookupDeps, id: string, strict: boolean): Promise<{ client: OAuthClient | null; row?: ClientRow }> {
  if (!CLIENT_ID.test(id)) return { client: null };
  const { version, tombstone } = await cacheKeys(svc.store, id, strict);
  let cache = clientCaches.get(svc.store);
  const now = svc.clock();
  const hit = cache?.get(id);
  if (hit && version !== null && hit.version === version && (!strict || hit.tombstone === tombstone) && now - hit.at <= MAX_AGE_MS) {
    return { client: hit.client, row: hit.row };
  }
  const [row] = await svc.database.db.select().from(oauthClients).where(eq(oauthClients.id, id));
  if (!row) {
    cache?.delete(id);
    return { client: null };
  }
  const client = clientOf(row);
  if (version !== null) {
    if (!cache) {
      cache = new Map();
      clientCaches.set(svc.store, cache);
    }
    cache.delete(id);
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(id, { version, tombstone: strict ? tombstone : undefined, at: now, row, client });
  }
  return { client, row };
}

const sameHash = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

const invalidClient = (description: string): never =>
  oauthError('invalid_client', description, 401, { 'WWW-Authenticate': 'Basic realm="oauth2"' });

/**
 * The client a token-side request authenticates as: a confidential client by
 * its secret (the current one, or the previous one during the overlap), a
 * public client by its id alone. Anything else is `401 invalid_client`.
 */
export async function authenticateClient(svc: ClientLookupDeps, credentials: ClientCredentials | null): Promise<OAuthClient> {
  if (credentials === null) return invalidClient('Client authentication is required');
  const { client, row } = await findClientRow(svc, credentials.clientId, true);
  if (!client || !row) return invalidClient('Unknown client or wrong secret');
  if (client.type === 'public') {
    if (credentials.method !== 'none') return invalidClient('A public client sends no secret');
    return client;
  }
  if (credentials.method === 'none') return invalidClient('This client must authenticate with its secret');
  const presented = hashOpaqueToken(credentials.clientSecret);
  const current = row.secretHash !== null && sameHash(presented, row.secretHash);
  const previous =
    row.previousSecretHash !== null &&
    row.previousSecretExpiresAt !== null &&
    row.previousSecretExpiresAt.getTime() > svc.clock() &&
    sameHash(presented, row.previousSecretHash);
  if (!current && !previous) return invalidClient('Unknown client or wrong secret');
  return client;
}

/*
 * Registration: what a client may be (the rules of API.md "OAuth clients"),
 * its secret, and the counter of its sign-ins. The admin API and
 * OAUTH_CLIENTS_FILE both write through these.
 */

export const CLIENT_GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export const CLIENT_SCOPES = ['openid', 'profile', 'email', 'roles', 'offline_access'] as const;
export const ID_TOKEN_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
export const CLIENT_ID_PATTERN = CLIENT_ID;

/** The writable representation of a client (what PUT takes whole; POST may omit the id). */
export type ClientFields = Omit<OAuthClient, 'createdAt' | 'updatedAt'>;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Why this redirect URI cannot be registered, or null when it can: absolute,
 * no fragment, no wildcard; https, or http on a loopback host (RFC 8252 §7.3),
 * or a private-use scheme of a native app (RFC 8252 §7.1: a reverse domain
 * name such as com.example.app:/cb).
 */
export function redirectUriProblem(uri: string): string | null {
  if (uri.includes('*')) return 'must not contain a wildcard';
  if (uri.includes('#')) return 'must not contain a fragment';
  if (/\s/.test(uri)) return 'must not contain white space';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'must be an absolute URI';
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme === 'https') return url.hostname ? null : 'must name a host';
  if (scheme === 'http') return LOOPBACK_HOSTS.has(url.hostname) ? null : 'must use https (http only on 127.0.0.1, [::1] or localhost)';
  // A private-use scheme: a reverse domain name with at least one dot, never a web or script scheme.
  if (/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/.test(scheme)) return null;
  return 'must use https, http on a loopback host, or a private-use scheme such as com.example.app';
}

/** The problem of a back-channel logout URI (the provider POSTs to it): https, or http on loopback. */
export function backchannelUriProblem(uri: string): string | null {
  const reason = redirectUriProblem(uri);
  if (reason) return reason;
  const scheme = new URL(uri).protocol;
  return scheme === 'https:' || scheme === 'http:' ? null : 'must use https (http only on 127.0.0.1, [::1] or localhost)';
}

/** An origin for CORS: scheme://host[:port], nothing else. */
export function originProblem(origin: string): string | null {
  try {
    const url = new URL(origin);
    if ((url.protocol === 'https:' || url.protocol === 'http:') && url.origin === origin) return null;
  } catch {
    // not a URL
  }
  return 'must be an origin such as https://app.example.com (no path or trailing slash)';
}

export type FieldProblem = { path: string; message: string; code: 'validation_failed' | 'invalid_redirect_uri' };

/**
 * Every rule across fields a schema cannot say alone: the URIs, and a public
 * client without client_credentials. Roles are checked against the table by the writer.
 */
export function clientFieldProblems(c: ClientFields): FieldProblem[] {
  const out: FieldProblem[] = [];
  const uris = (field: 'redirectUris' | 'postLogoutRedirectUris') =>
    c[field].forEach((uri, i) => {
      const reason = redirectUriProblem(uri);
      if (reason) out.push({ path: `${field}.${i}`, message: `${uri}: ${reason}`, code: 'invalid_redirect_uri' });
    });
  uris('redirectUris');
  uris('postLogoutRedirectUris');
  if (c.backchannelLogoutUri !== null) {
    const reason = backchannelUriProblem(c.backchannelLogoutUri);
    if (reason) out.push({ path: 'backchannelLogoutUri', message: reason, code: 'invalid_redirect_uri' });
  }
  c.allowedOrigins.forEach((o, i) => {
    const reason = originProblem(o);
    if (reason) out.push({ path: `allowedOrigins.${i}`, message: reason, code: 'validation_failed' });
  });
  if (c.type === 'public' && c.grantTypes.includes('client_credentials')) {
    out.push({ path: 'grantTypes', message: 'A public client cannot use client_credentials', code: 'validation_failed' });
  }
  if (c.grantTypes.includes('authorization_code') && c.redirectUris.length === 0) {
    out.push({ path: 'redirectUris', message: 'The authorization_code grant needs at least one redirect URI', code: 'validation_failed' });
  }
  return out;
}

/** A new client secret: 256 random bits, base64url; only its SHA-256 is stored. */
export const newClientSecret = (): { secret: string; hash: string } => {
  const secret = newOpaqueToken();
  return { secret, hash: hashOpaqueToken(secret) };
};

/** A generated client id (when none is given): 128 random bits, base64url. */
export const newClientId = (): string => randomBytes(16).toString('base64url');

/** The stats counter of a client's sign-ins (code exchanges), kept per hour too. */
export const clientSignInCounter = (clientId: string) => `oauth.signin.${clientId}` as const;

/** Count one sign-in of a client (a code exchanged at the token endpoint): one per hour bucket, summed across instances. */
export function countClientSignIn(svc: Pick<AppServices, 'stats'>, clientId: string): void {
  svc.stats.add(clientSignInCounter(clientId));
}

/** The row columns of a client's writable fields (list fields as JSON text). */
export function clientColumns(c: ClientFields) {
  return {
    name: c.name,
    type: c.type,
    redirectUris: JSON.stringify(c.redirectUris),
    postLogoutRedirectUris: JSON.stringify(c.postLogoutRedirectUris),
    grantTypes: JSON.stringify(c.grantTypes),
    scopes: JSON.stringify(c.scopes),
    firstParty: c.firstParty,
    allowedOrigins: JSON.stringify(c.allowedOrigins),
    idTokenSignedResponseAlg: c.idTokenSignedResponseAlg,
    backchannelLogoutUri: c.backchannelLogoutUri,
    audiences: JSON.stringify(c.audiences),
    roles: JSON.stringify(c.roles),
  };
}

export type { ClientRow };
