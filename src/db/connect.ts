// Opens the database: postgres.js (PostgreSQL or CockroachDB, TLS) when a URL is
// configured, else an embedded PGlite persisted under DATA_DIR.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { ownerOnlyPgliteFs } from '../lib/data-dir.js';
import { parseDatabaseUrl } from '../lib/database-url.js';
import * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export type Database = {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** Throws when the database does not answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Pool figures for /metrics. */
  poolStats(): { max: number; probesInFlight: number };
};

export type PostgresOptions = {
  url: string;
  caCert?: string | undefined;
  clientCert?: string | undefined;
  clientKey?: string | undefined;
  poolSize?: number;
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
};

/**
 * TLS options from the URL's libpq-style parameters and the DATABASE_* files.
 * postgres.js would trust only the system CAs for `sslmode=verify-full`, so the
 * parameters are removed from the URL and handed over as explicit `ssl` options.
 */
export function tlsFromUrl(opts: PostgresOptions): { url: string; ssl: false | ConnectionOptions } {
  const parsed = parseDatabaseUrl(opts.url);
  const u = parsed.url;
  const p = u.searchParams;
  const mode = p.get('sslmode') ?? (opts.caCert ? 'verify-full' : 'disable');
  const caFile = opts.caCert ?? p.get('sslrootcert') ?? undefined;
  const certFile = opts.clientCert ?? p.get('sslcert') ?? undefined;
  const keyFile = opts.clientKey ?? p.get('sslkey') ?? undefined;
  for (const k of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey']) p.delete(k);
  const url = parsed.toString();
  if (mode === 'disable') return { url, ssl: false };
  const ssl: ConnectionOptions = {
    ca: caFile ? readFileSync(caFile) : undefined,
    cert: certFile ? readFileSync(certFile) : undefined,
    key: keyFile ? readFileSync(keyFile) : undefined,
    // Several hosts: postgres.js names each host it connects to (verify-full checks each).
    ...(parsed.hosts.length > 1 ? {} : { servername: u.hostname }),
  };
  if (mode === 'verify-full') return { url, ssl: { ...ssl, rejectUnauthorized: true } };
  if (mode === 'verify-ca') return { url, ssl: { ...ssl, rejectUnauthorized: true, checkServerIdentity: () => undefined } };
  // require / prefer / allow: encrypted, not authenticated (libpq semantics).
  return { url, ssl: { ...ssl, rejectUnauthorized: false } };
}

export async function connectPostgres(opts: PostgresOptions): Promise<Database> {
  const { default: postgres } = await import('postgres');
  const { drizzle } = await import('drizzle-orm/postgres-js');
  const { url, ssl } = tlsFromUrl(opts);
  const max = opts.poolSize ?? 10;
  let probesInFlight = 0;
  const client = postgres(url, {
    ssl,
    max,
    connect_timeout: 5,
    idle_timeout: 30,
    max_lifetime: 60 * 30,
    // postgres.js waits up to 20 s (growing backoff) before reconnecting after a
    // failure, holding queued queries that long. A short, flat delay answers 503
    // promptly while the database is down and recovers within a second.
    backoff: () => 0.25,
    onnotice: () => {},
    // Sent as startup parameters, which PostgreSQL and CockroachDB both take as
    // session settings: no statement or lock wait holds a pool slot for ever.
    connection: {
      application_name: 'auth-system',
      statement_timeout: opts.statementTimeoutMs ?? 30_000,
      lock_timeout: opts.lockTimeoutMs ?? 5_000,
    },
  });
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    kind: 'postgres',
    async ping() {
      probesInFlight++;
      try {
        await client`select 1`;
      } finally {
        probesInFlight--;
      }
    },
    async close() {
      await client.end({ timeout: 5 });
    },
    poolStats: () => ({ max, probesInFlight }),
  };
}

/** Embedded PGlite: under `dataDir/pglite`, or in memory when dataDir is null. */
export async function connectPglite(dataDir: string | null): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  let client: InstanceType<typeof PGlite>;
  if (dataDir === null) client = new PGlite();
  else {
    const dir = join(dataDir, 'pglite');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Owner-only modes for every file PGlite writes (the process umask does not reach them).
    client = new PGlite({ dataDir: dir, fs: await ownerOnlyPgliteFs(dir) });
  }
  await client.waitReady;
  const db = drizzle({ client, schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      await client.close();
    },
    poolStats: () => ({ max: 1, probesInFlight: 0 }),
  };
}

export async function connectDatabase(cfg: {
  url: string | undefined;
  caCert?: string | undefined;
  clientCert?: string | undefined;
  clientKey?: string | undefined;
  poolSize?: number;
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  dataDir: string;
}): Promise<Database> {
  if (cfg.url) return connectPostgres({ ...cfg, url: cfg.url });
  return connectPglite(cfg.dataDir);
}
