// OAuth clients as the provider sees them: a registered row read into the
// `Client` shape, and client authentication at the token-side endpoints
// (RFC 6749 §2.3). Secrets are 256 random bits, so they are stored as SHA-256
// and compared in constant time.
import { timingSafeEqual } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { oauthClients } from '../db/schema.js';
import { hashOpaqueToken } from '../security/opaque-tokens.js';
import { oauthError } from '../lib/oauth-error.js';

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

/** The registered client with this id, or null (an id that cannot be one is not looked up). */
export async function findClient(svc: Pick<AppServices, 'database'>, id: string): Promise<OAuthClient | null> {
  return (await findClientRow(svc, id)).client;
}

async function findClientRow(svc: Pick<AppServices, 'database'>, id: string): Promise<{ client: OAuthClient | null; row?: ClientRow }> {
  if (!CLIENT_ID.test(id)) return { client: null };
  const [row] = await svc.database.db.select().from(oauthClients).where(eq(oauthClients.id, id));
  return row ? { client: clientOf(row), row } : { client: null };
}

const sameHash = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

const invalidClient = (description: string): never =>
  oauthError('invalid_client', description, 401, { 'WWW-Authenticate': 'Basic realm="oauth2"' });

/**
 * The client a token-side request authenticates as: a confidential client by
 * its secret (the current one, or the previous one during the overlap), a
 * public client by its id alone. Anything else is `401 invalid_client`.
 */
export async function authenticateClient(
  svc: Pick<AppServices, 'database' | 'clock'>,
  credentials: ClientCredentials | null,
): Promise<OAuthClient> {
  if (credentials === null) return invalidClient('Client authentication is required');
  const { client, row } = await findClientRow(svc, credentials.clientId);
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
