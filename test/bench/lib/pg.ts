// Database administration for the bench: its own databases on the local
// PostgreSQL (never the service's or the tests'), created, cloned and dropped.
import postgres from 'postgres';

export const adminUrl = () => process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function urlFor(database: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

const ident = (name: string) => {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  return `"${name}"`;
};

async function withAdmin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function databaseExists(name: string): Promise<boolean> {
  return withAdmin(async (sql) => (await sql`select 1 from pg_database where datname = ${name}`).length > 0);
}

export async function dropDatabase(name: string): Promise<void> {
  await withAdmin((sql) => sql.unsafe(`drop database if exists ${ident(name)} with (force)`));
}

/** Drop and create (empty, or as a copy of `template`). */
export async function recreateDatabase(name: string, template?: string): Promise<void> {
  await withAdmin(async (sql) => {
    await sql.unsafe(`drop database if exists ${ident(name)} with (force)`);
    await sql.unsafe(`create database ${ident(name)}${template ? ` template ${ident(template)}` : ''}`);
  });
}

/** Row counts of the tables the scale scenario is about. */
export async function tableCounts(database: string): Promise<Record<string, number>> {
  const sql = postgres(urlFor(database), { max: 1, onnotice: () => {} });
  try {
    const out: Record<string, number> = {};
    for (const t of ['users', 'posts', 'audit_logs', 'sessions']) {
      const [r] = await sql.unsafe<{ n: string }[]>(`select count(*)::text as n from ${t}`);
      out[t] = Number(r?.n ?? 0);
    }
    return out;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
