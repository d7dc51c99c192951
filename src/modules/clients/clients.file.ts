// OAUTH_CLIENTS_FILE: OAuth clients declared as code, applied at every start
// (created or updated by id, marked source `file`). The file is a JSON array of
// Client fields; a confidential client's secret is never in it: `clientSecretEnv`
// names the environment variable holding it (read through config). A file
// that is not right stops the start with one message listing every problem.
import { eq, inArray } from 'drizzle-orm';
import { ConfigError } from '../../config.js';
import { oauthClients, roles } from '../../db/schema.js';
import { withTx } from '../../db/tx.js';
import type { Deps } from '../../deps.js';
import { writeEvents } from '../../events/outbox.js';
import { readDeclaredFile } from '../../lib/declared-file.js';
import { Problem } from '../../lib/problem.js';
import { clientFieldProblems } from '../../provider/clients.js';
import { ClientsFileSchema, type DeclaredClient } from './clients.schemas.js';
import { createClient, updateClient, type ClientsDeps } from './clients.service.js';

/** A declared secret is hashed with a fast hash (SHA-256): it must be long and random, like a generated one. */
const MIN_SECRET_LENGTH = 32;

type FileDeps = Pick<Deps, 'database' | 'config' | 'metrics' | 'logger' | 'store'> & Partial<Pick<Deps, 'clock'>>;

/** The declared clients with their secrets, or a ConfigError naming every problem. */
async function readDeclared(deps: FileDeps, file: string): Promise<{ client: DeclaredClient; secret?: string }[]> {
  const where = `OAUTH_CLIENTS_FILE (${file})`;
  const read = readDeclaredFile(where, file, ClientsFileSchema);
  if (!read.ok) throw new ConfigError(read.problems);
  const declared = read.data;
  const problems: string[] = [];
  const out: { client: DeclaredClient; secret?: string }[] = [];
  declared.forEach((client, i) => {
    const at = `${where}: ${i} (${client.id})`;
    const { clientSecretEnv, ...fields } = client;
    for (const p of clientFieldProblems(fields)) problems.push(`${at}: ${p.path}: ${p.message}`);
    if (client.type === 'public') {
      if (clientSecretEnv !== undefined) problems.push(`${at}: clientSecretEnv: a public client has no secret`);
      out.push({ client });
      return;
    }
    if (clientSecretEnv === undefined) {
      problems.push(`${at}: clientSecretEnv: a confidential client needs it (the secret is never in the file)`);
      return;
    }
    const secret = deps.config.oauth.secretFromEnv(clientSecretEnv);
    if (secret === undefined) problems.push(`${at}: clientSecretEnv: ${clientSecretEnv} is not set`);
    else if (secret.length < MIN_SECRET_LENGTH) {
      problems.push(
        `${at}: clientSecretEnv: ${clientSecretEnv} must hold at least ${MIN_SECRET_LENGTH} characters (openssl rand -base64 32)`,
      );
    } else out.push({ client, secret });
  });
  const wanted = [...new Set(declared.flatMap((c) => c.roles))];
  if (wanted.length > 0) {
    const known = await deps.database.db.select({ name: roles.name }).from(roles).where(inArray(roles.name, wanted));
    const missing = wanted.filter((r) => !known.some((k) => k.name === r));
    if (missing.length) problems.push(`${where}: unknown role: ${missing.join(', ')}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

/** Apply OAUTH_CLIENTS_FILE, if set: create or update each declared client by id. Safe when instances start together. */
export async function applyClientsFile(deps: FileDeps): Promise<void> {
  const file = deps.config.oauth.clientsFile;
  if (file === undefined) return;
  const declared = await readDeclared(deps, file);
  // Start-up has no event relay yet: events are written to the outbox, which a relay publishes after its grace.
  const svc: ClientsDeps = {
    database: deps.database,
    config: deps.config,
    store: deps.store,
    clock: deps.clock ?? Date.now,
    tx: (fn) =>
      withTx(deps.database.db, (tx) => fn(tx, async (...events) => void (await writeEvents(tx, events))), {
        retries: deps.metrics.txRetries,
      }),
  };
  for (const { client, secret } of declared) {
    const { clientSecretEnv: _, id, ...fields } = client;
    const opts = { source: 'file' as const, ...(secret !== undefined ? { secret } : {}) };
    const [existing] = await deps.database.db.select({ id: oauthClients.id }).from(oauthClients).where(eq(oauthClients.id, id));
    if (existing) await updateClient(svc, null, id, fields, opts);
    else {
      try {
        await createClient(svc, null, { id, ...fields }, opts);
      } catch (err) {
        // Another instance starting at the same time created it first: update it instead.
        const taken = err instanceof Problem && err.extra.errors?.some((e) => e.path === 'id');
        if (!taken) throw err;
        await updateClient(svc, null, id, fields, opts);
      }
    }
  }
  deps.logger.info({ clients: declared.map((d) => d.client.id) }, 'OAUTH_CLIENTS_FILE applied');
}
