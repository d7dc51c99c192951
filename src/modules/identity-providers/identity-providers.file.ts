// IDENTITY_PROVIDERS_FILE: upstream identity providers declared as code,
// applied at every start (created or updated by id, marked source `file`).
// The file is a JSON array of IdentityProvider fields; a client secret is
// never in it: `clientSecretEnv` names the environment variable holding it
// (read through config). A file that is not right stops the start with one
// message listing every problem. Providers added through the API are left alone.
import { eq } from 'drizzle-orm';
import { ConfigError } from '../../config.js';
import { identityProviders } from '../../db/schema.js';
import { withTx } from '../../db/tx.js';
import type { Deps } from '../../deps.js';
import { writeEvents } from '../../events/outbox.js';
import { readDeclaredFile } from '../../lib/declared-file.js';
import { Problem } from '../../lib/problem.js';
import { type DeclaredIdentityProvider, IdentityProvidersFileSchema } from './identity-providers.schemas.js';
import { createIdp, type IdpDeps, idpFieldProblems, idpFields, updateIdp } from './identity-providers.service.js';

type FileDeps = Pick<Deps, 'database' | 'config' | 'metrics' | 'logger' | 'secrets'> & Partial<Pick<Deps, 'clock'>>;

type Declared = { provider: DeclaredIdentityProvider; secret: string | undefined };

/** The declared providers with their secrets, or a ConfigError naming every problem. */
function readDeclared(deps: FileDeps, file: string): Declared[] {
  const where = `IDENTITY_PROVIDERS_FILE (${file})`;
  const read = readDeclaredFile(where, file, IdentityProvidersFileSchema);
  if (!read.ok) throw new ConfigError(read.problems);
  const declared = read.data;
  const problems: string[] = [];
  const out: Declared[] = [];
  declared.forEach((provider, i) => {
    const at = `${where}: ${i} (${provider.id})`;
    const { clientSecretEnv } = provider;
    let secret: string | undefined;
    if (clientSecretEnv !== undefined) {
      secret = deps.config.oauth.secretFromEnv(clientSecretEnv);
      if (secret === undefined || secret === '') problems.push(`${at}: clientSecretEnv: ${clientSecretEnv} is not set`);
    }
    const fieldProblems = idpFieldProblems(idpFields(provider), {
      production: deps.config.production,
      // A missing variable is reported above; here only a secret not asked for at all.
      hasSecret: clientSecretEnv !== undefined,
    });
    for (const p of fieldProblems) {
      const path = p.path === 'clientSecret' ? 'clientSecretEnv' : p.path;
      problems.push(
        `${at}: ${path}: ${p.path === 'clientSecret' ? 'a github provider needs it (the secret is never in the file)' : p.message}`,
      );
    }
    out.push({ provider, secret });
  });
  if (problems.length) throw new ConfigError(problems);
  return out;
}

/** Apply IDENTITY_PROVIDERS_FILE, if set: create or update each declared provider by id. Safe when instances start together. */
export async function applyIdentityProvidersFile(deps: FileDeps): Promise<void> {
  const file = deps.config.identityProvidersFile;
  if (file === undefined) return;
  const declared = readDeclared(deps, file);
  const svc: IdpDeps = {
    database: deps.database,
    config: deps.config,
    secrets: deps.secrets,
    clock: deps.clock ?? Date.now,
    tx: (fn) =>
      withTx(deps.database.db, (tx) => fn(tx, async (...events) => void (await writeEvents(tx, events))), {
        retries: deps.metrics.txRetries,
      }),
  };
  for (const { provider, secret } of declared) {
    const { clientSecretEnv: _, clientSecret: __, id, ...rest } = provider;
    // The file is the whole truth of a provider it declares: no clientSecretEnv, no secret.
    const update = { ...rest, scopes: idpFields(provider).scopes, clientSecret: secret ?? null };
    const opts = { source: 'file' as const };
    const [existing] = await deps.database.db
      .select({ id: identityProviders.id })
      .from(identityProviders)
      .where(eq(identityProviders.id, id));
    if (existing) await updateIdp(svc, id, update, opts);
    else {
      try {
        await createIdp(svc, { id, ...rest, ...(secret !== undefined ? { clientSecret: secret } : {}) }, opts);
      } catch (err) {
        // Another instance starting at the same time created it first: update it instead.
        const taken = err instanceof Problem && err.extra.errors?.some((e) => e.path === 'id');
        if (!taken) throw err;
        await updateIdp(svc, id, update, opts);
      }
    }
  }
  deps.logger.info({ identityProviders: declared.map((d) => d.provider.id) }, 'IDENTITY_PROVIDERS_FILE applied');
}
