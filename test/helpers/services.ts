// Where the real services of integration tests live (the local PostgreSQL and
// Redis by default), and fresh databases on them.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { connectPglite, connectPostgres, type Database } from '../../src/db/connect.js';

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export type Backend = 'pglite' | 'postgres';

/** Backends the HTTP-level suites run against (TEST_BACKENDS=pglite,postgres by default). */
export const BACKENDS: Backend[] = (process.env.TEST_BACKENDS ?? 'pglite,postgres').split(',').filter(Boolean) as Backend[];

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A new, empty database on the server at PG_URL; dispose() drops it. */
export async function freshPostgres(baseUrl = PG_URL): Promise<{ url: string; dispose: () => Promise<void> }> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = await adminClient(baseUrl);
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: withDatabase(baseUrl, name),
    dispose: async () => {
      const a = await adminClient(baseUrl);
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await a.end();
    },
  };
}

async function adminClient(url: string) {
  const { tlsFromUrl } = await import('../../src/db/connect.js');
  const t = tlsFromUrl({
    url,
    caCert: process.env.TEST_DATABASE_CA,
    clientCert: process.env.TEST_DATABASE_CERT,
    clientKey: process.env.TEST_DATABASE_KEY,
  });
  return postgres(t.url, { ssl: t.ssl, max: 1, onnotice: () => {} });
}

/** A database for one test file: in-memory PGlite, or a fresh PostgreSQL database. */
export async function openDatabase(backend: Backend): Promise<{ database: Database; dispose: () => Promise<void> }> {
  if (backend === 'pglite') {
    const database = await connectPglite(null);
    return { database, dispose: () => database.close() };
  }
  const fresh = await freshPostgres();
  const database = await connectPostgres({
    url: fresh.url,
    caCert: process.env.TEST_DATABASE_CA,
    clientCert: process.env.TEST_DATABASE_CERT,
    clientKey: process.env.TEST_DATABASE_KEY,
    poolSize: 10,
  });
  return {
    database,
    dispose: async () => {
      await database.close();
      await fresh.dispose();
    },
  };
}
