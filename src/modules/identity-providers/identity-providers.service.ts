// Upstream identity providers: add, read, replace and remove them. The client
// secret is write-only: sealed under MFA_ENCRYPTION_KEY with the provider's id
// as additional data (idpSecretContext), never returned, logged or audited.
// The sign-in strategy reads the rows on every start and callback
// (src/signin/upstream/providers.ts), so a change is in force at once, on every instance.
import { and, asc, eq } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { isUniqueViolation } from '../../db/errors.js';
import { identityProviders } from '../../db/schema.js';
import { type FieldError, problem } from '../../lib/problem.js';
import { GITHUB_API_URL, GITHUB_URL, idpSecretContext } from '../../signin/upstream/providers.js';
import {
  type CreateIdentityProvider,
  DEFAULT_SCOPES,
  type IdentityProviderView,
  type IdpType,
  type UpdateIdentityProvider,
} from './identity-providers.schemas.js';

/** What writing providers needs: the API's services, or what start-up has (applying IDENTITY_PROVIDERS_FILE). */
export type IdpDeps = Pick<AppServices, 'tx' | 'clock' | 'config' | 'database' | 'secrets'>;

type Row = typeof identityProviders.$inferSelect;

const scopesOf = (raw: string): string[] => {
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
};

/** A row in the API's shape: never the sealed secret, only whether there is one. */
export function idpView(row: Row): IdentityProviderView {
  const github = row.type === 'github';
  return {
    id: row.id,
    type: github ? 'github' : 'oidc',
    name: row.name,
    issuer: github ? null : row.issuer,
    githubUrl: github ? (row.githubUrl ?? GITHUB_URL) : null,
    githubApiUrl: github ? (row.githubApiUrl ?? GITHUB_API_URL) : null,
    clientId: row.clientId,
    scopes: scopesOf(row.scopes),
    trustEmailVerified: row.trustEmailVerified,
    enabled: row.enabled,
    hasClientSecret: row.clientSecretSealed !== null,
    source: row.source === 'file' ? 'file' : 'api',
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** The fields of a provider once defaults are applied: what is stored (the secret aside). */
export type IdpFields = {
  type: IdpType;
  name: string;
  issuer: string | null;
  githubUrl: string | null;
  githubApiUrl: string | null;
  clientId: string;
  scopes: string[];
  trustEmailVerified: boolean;
  enabled: boolean;
};

type Input = Omit<UpdateIdentityProvider, 'clientSecret' | 'scopes'> & { scopes?: string[] | undefined };

export function idpFields(input: Input): IdpFields {
  const github = input.type === 'github';
  return {
    type: input.type,
    name: input.name,
    issuer: github ? null : (input.issuer ?? null),
    githubUrl: github ? (input.githubUrl ?? GITHUB_URL) : null,
    githubApiUrl: github ? (input.githubApiUrl ?? GITHUB_API_URL) : null,
    clientId: input.clientId,
    scopes: input.scopes ?? [...DEFAULT_SCOPES[input.type]],
    trustEmailVerified: input.trustEmailVerified,
    enabled: input.enabled,
  };
}

/**
 * What a URL of a provider must be: absolute, https (http only outside
 * production: development and tests against a local provider), no
 * credentials, no fragment, no query (an issuer is compared as a string with
 * the `iss` of every ID token, and discovery appends to it).
 */
function urlProblem(value: string, production: boolean): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'Must be an absolute URL';
  }
  if (u.protocol === 'http:') {
    if (production) return 'Must be an https URL (http is accepted only outside production)';
  } else if (u.protocol !== 'https:') return 'Must be an https URL';
  if (u.username !== '' || u.password !== '') return 'Must not hold a user name or password';
  if (value.includes('#')) return 'Must not have a fragment';
  if (value.includes('?')) return 'Must not have a query';
  return undefined;
}

/** Everything wrong with the fields that no schema says alone (the URLs under this configuration, the scopes a type needs). */
export function idpFieldProblems(fields: IdpFields, opts: { production: boolean; hasSecret: boolean }): FieldError[] {
  const out: FieldError[] = [];
  for (const path of ['issuer', 'githubUrl', 'githubApiUrl'] as const) {
    const value = fields[path];
    const message = value === null ? undefined : urlProblem(value, opts.production);
    if (message) out.push({ path, message });
  }
  if (fields.type === 'oidc' && !fields.scopes.includes('openid')) {
    out.push({ path: 'scopes', message: 'An oidc provider needs the openid scope' });
  }
  // GitHub's token endpoint authenticates every OAuth App with its secret.
  if (fields.type === 'github' && !opts.hasSecret) out.push({ path: 'clientSecret', message: 'A github provider needs its client secret' });
  return out;
}

function assertFields(fields: IdpFields, opts: { production: boolean; hasSecret: boolean }): void {
  const errors = idpFieldProblems(fields, opts);
  if (errors.length) problem('validation_failed', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
}

function columns(fields: IdpFields) {
  return {
    type: fields.type,
    name: fields.name,
    issuer: fields.issuer,
    githubUrl: fields.githubUrl,
    githubApiUrl: fields.githubApiUrl,
    clientId: fields.clientId,
    scopes: JSON.stringify(fields.scopes),
    trustEmailVerified: fields.trustEmailVerified,
    enabled: fields.enabled,
  };
}

const notFound = (id: string): never => problem('idp_not_found', `No identity provider ${id}`);

/** As clients do (a taken client id): 400 validation_failed on `id`. */
const idTaken = (id: string): never =>
  problem('validation_failed', `An identity provider with the id ${id} exists`, {
    errors: [{ path: 'id', message: 'This identity provider id is taken' }],
  });

export async function createIdp(
  svc: IdpDeps,
  input: CreateIdentityProvider,
  opts: { source?: 'api' | 'file' } = {},
): Promise<IdentityProviderView> {
  const { id, clientSecret } = input;
  const fields = idpFields(input);
  assertFields(fields, { production: svc.config.production, hasSecret: clientSecret !== undefined });
  const sealed = clientSecret === undefined ? null : svc.secrets.seal(clientSecret, idpSecretContext(id));
  try {
    const row = await svc.tx(async (tx) => {
      const now = new Date(svc.clock());
      const [created] = await tx
        .insert(identityProviders)
        .values({ id, ...columns(fields), clientSecretSealed: sealed, source: opts.source ?? 'api', createdAt: now, updatedAt: now })
        .onConflictDoNothing()
        .returning();
      return created ?? idTaken(id);
    });
    return idpView(row);
  } catch (err) {
    if (isUniqueViolation(err)) idTaken(id);
    throw err;
  }
}

export async function getIdp(svc: Pick<AppServices, 'database'>, id: string): Promise<IdentityProviderView> {
  const [row] = await svc.database.db.select().from(identityProviders).where(eq(identityProviders.id, id));
  return row ? idpView(row) : notFound(id);
}

/** Every provider, in the order they were added. */
export async function listIdps(svc: Pick<AppServices, 'database'>): Promise<{ items: IdentityProviderView[] }> {
  const rows = await svc.database.db.select().from(identityProviders).orderBy(asc(identityProviders.createdAt), asc(identityProviders.id));
  return { items: rows.map(idpView) };
}

/** The enabled providers' buttons for the sign-in and registration pages, in the order they were added. */
export async function publicIdps(svc: Pick<AppServices, 'database'>) {
  const rows = await svc.database.db
    .select({ id: identityProviders.id, name: identityProviders.name, type: identityProviders.type })
    .from(identityProviders)
    .where(eq(identityProviders.enabled, true))
    .orderBy(asc(identityProviders.createdAt), asc(identityProviders.id));
  return { items: rows.map((r) => ({ id: r.id, name: r.name, type: r.type === 'github' ? ('github' as const) : ('oidc' as const) })) };
}

/**
 * Replace a provider's writable fields. `clientSecret` undefined keeps the
 * stored secret, null removes it, a string replaces it. The type cannot
 * change: the subjects of its linked identities were given by the old one.
 */
export async function updateIdp(
  svc: IdpDeps,
  id: string,
  input: UpdateIdentityProvider,
  opts: { source?: 'api' | 'file' } = {},
): Promise<IdentityProviderView> {
  const { clientSecret } = input;
  const fields = idpFields(input);
  const row = await svc.tx(async (tx) => {
    const [before] = await tx.select().from(identityProviders).where(eq(identityProviders.id, id));
    if (!before) return notFound(id);
    if (before.type !== fields.type) {
      problem('validation_failed', 'The type of a provider cannot change: add a new provider instead', {
        errors: [{ path: 'type', message: `Must stay ${before.type}` }],
      });
    }
    const hasSecret = clientSecret === undefined ? before.clientSecretSealed !== null : clientSecret !== null;
    assertFields(fields, { production: svc.config.production, hasSecret });
    let sealed = before.clientSecretSealed;
    if (clientSecret === null) sealed = null;
    else if (clientSecret !== undefined && !sameSecret(svc, before, clientSecret))
      sealed = svc.secrets.seal(clientSecret, idpSecretContext(id));
    const [updated] = await tx
      .update(identityProviders)
      .set({
        ...columns(fields),
        clientSecretSealed: sealed,
        ...(opts.source ? { source: opts.source } : {}),
        updatedAt: new Date(svc.clock()),
      })
      .where(eq(identityProviders.id, id))
      .returning();
    return updated!;
  });
  return idpView(row);
}

/** The stored secret is this one, under the current key (a declared secret applied again at each start is not sealed anew). */
function sameSecret(svc: Pick<AppServices, 'secrets'>, row: Row, secret: string): boolean {
  if (row.clientSecretSealed === null) return false;
  try {
    const opened = svc.secrets.openChecked(row.clientSecretSealed, idpSecretContext(row.id));
    return !opened.stale && opened.plain === secret;
  } catch {
    return false;
  }
}

/**
 * Remove a provider. Its linked identities go with it (FK cascade): a user
 * who could sign in only through it must set a password (POST
 * /auth/password/forgot) to get back in. Sign-ins under way through it fail.
 */
export async function deleteIdp(svc: Pick<AppServices, 'tx'>, id: string): Promise<void> {
  await svc.tx(async (tx) => {
    const [gone] = await tx.delete(identityProviders).where(eq(identityProviders.id, id)).returning({ id: identityProviders.id });
    if (!gone) notFound(id);
  });
}

/**
 * Seal every provider's secret again under the current MFA_ENCRYPTION_KEY
 * (after a key rotation), unless the row changed meanwhile. Unreadable ones
 * are counted, never thrown: the provider's sign-ins fail until its secret is set again.
 */
export async function resealIdpSecrets(
  svc: Pick<AppServices, 'database' | 'secrets' | 'logger'>,
): Promise<{ resealed: number; unreadable: number }> {
  const counts = { resealed: 0, unreadable: 0 };
  if (svc.secrets.previousKeys === 0) return counts;
  const rows = await svc.database.db
    .select({ id: identityProviders.id, sealed: identityProviders.clientSecretSealed })
    .from(identityProviders);
  for (const row of rows) {
    if (row.sealed === null) continue;
    let opened: { plain: string; stale: boolean };
    try {
      opened = svc.secrets.openChecked(row.sealed, idpSecretContext(row.id));
    } catch {
      counts.unreadable++;
      continue;
    }
    if (!opened.stale) continue;
    const done = await svc.database.db
      .update(identityProviders)
      .set({ clientSecretSealed: svc.secrets.seal(opened.plain, idpSecretContext(row.id)) })
      .where(and(eq(identityProviders.id, row.id), eq(identityProviders.clientSecretSealed, row.sealed)))
      .returning({ id: identityProviders.id });
    if (done.length) counts.resealed++;
  }
  if (counts.unreadable > 0) {
    svc.logger.warn(counts, 'identity provider secrets sealed again; some open with none of the configured keys: set them again');
  } else svc.logger.info(counts, 'identity provider secrets sealed again under MFA_ENCRYPTION_KEY');
  return counts;
}
