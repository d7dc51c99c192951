// The upstream identity providers as the sign-in strategy sees them: a row of
// identity_providers with its client secret opened. Read on every start and
// callback (not a hot path), so a provider disabled or removed meanwhile is
// refused at once, on every instance.
import { eq } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { identityProviders } from '../../db/schema.js';

export type UpstreamType = 'oidc' | 'github';

export type UpstreamProvider = {
  id: string;
  type: UpstreamType;
  name: string;
  /** oidc: the issuer; discovery at {issuer}/.well-known/openid-configuration. */
  issuer: string | null;
  /** github: the web origin (authorize, token) and the API origin (user, emails). */
  githubUrl: string;
  githubApiUrl: string;
  clientId: string;
  /** Opened from the sealed column; null when none was given (a public client at the upstream). */
  clientSecret: string | null;
  scopes: string[];
  trustEmailVerified: boolean;
  enabled: boolean;
};

export const GITHUB_URL = 'https://github.com';
export const GITHUB_API_URL = 'https://api.github.com';

/** The additional data a provider's client secret is sealed with: a sealed secret copied onto another provider's row does not open. */
export const idpSecretContext = (providerId: string) => `idp:${providerId}`;

type Row = typeof identityProviders.$inferSelect;

function parseScopes(raw: string): string[] {
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

export function upstreamOf(svc: Pick<AppServices, 'secrets'>, row: Row): UpstreamProvider {
  return {
    id: row.id,
    type: row.type === 'github' ? 'github' : 'oidc',
    name: row.name,
    issuer: row.issuer,
    githubUrl: row.githubUrl ?? GITHUB_URL,
    githubApiUrl: row.githubApiUrl ?? GITHUB_API_URL,
    clientId: row.clientId,
    clientSecret: row.clientSecretSealed === null ? null : svc.secrets.open(row.clientSecretSealed, idpSecretContext(row.id)),
    scopes: parseScopes(row.scopes),
    trustEmailVerified: row.trustEmailVerified,
    enabled: row.enabled,
  };
}

/** The provider with this id when it exists and is enabled; null otherwise. */
export async function enabledUpstream(svc: AppServices, id: string): Promise<UpstreamProvider | null> {
  const [row] = await svc.database.db.select().from(identityProviders).where(eq(identityProviders.id, id));
  if (!row?.enabled) return null;
  return upstreamOf(svc, row);
}
