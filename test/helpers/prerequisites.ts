// vitest globalSetup: the suite needs a PostgreSQL server and a Redis server
// (many files use them directly, whatever TEST_BACKENDS says). When one does
// not answer, stop before any test file runs, with one message saying which and
// what to do, rather than a page of per-file connection errors and timeouts.
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { tlsFromUrl } from '../../src/db/connect.js';
import { PG_URL, REDIS_URL } from './services.js';

const CONNECT_TIMEOUT_S = 5;

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

const reason = (err: unknown): string => {
  const e = err as { message?: string; code?: string; errors?: { message?: string }[] };
  // A refused connection to a name with several addresses (localhost) is an AggregateError with an empty message.
  return e.message || e.errors?.map((x) => x.message).join('; ') || e.code || String(err);
};

/** Rejects after the connect timeout: a port that accepts connections but never speaks the protocol must not hang the run. */
function deadline(what: string): { promise: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${CONNECT_TIMEOUT_S} s (is ${what} listening there?)`)),
      CONNECT_TIMEOUT_S * 1000,
    );
  });
  return { promise, clear: () => clearTimeout(timer) };
}

async function checkPostgres(): Promise<string | null> {
  const where = `PostgreSQL at ${redact(PG_URL)}${process.env.TEST_DATABASE_URL ? ' (TEST_DATABASE_URL)' : ''}`;
  let sql: postgres.Sql | undefined;
  const limit = deadline('PostgreSQL');
  try {
    const t = tlsFromUrl({
      url: PG_URL,
      caCert: process.env.TEST_DATABASE_CA,
      clientCert: process.env.TEST_DATABASE_CERT,
      clientKey: process.env.TEST_DATABASE_KEY,
    });
    sql = postgres(t.url, { ssl: t.ssl, max: 1, connect_timeout: CONNECT_TIMEOUT_S, onnotice: () => {} });
    await Promise.race([sql`select 1`, limit.promise]);
    return null;
  } catch (err) {
    return `${where}: ${reason(err)}`;
  } finally {
    limit.clear();
    await sql?.end({ timeout: 0 }).catch(() => {});
  }
}

async function checkRedis(): Promise<string | null> {
  const where = `Redis at ${redact(REDIS_URL)}${process.env.TEST_REDIS_URL ? ' (TEST_REDIS_URL)' : ''}`;
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_S * 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The connection's own error (ECONNREFUSED, a wrong password) says more than connect()'s "Connection is closed".
  let seen: unknown;
  redis.on('error', (err) => {
    seen ??= err;
  });
  const limit = deadline('Redis');
  try {
    await Promise.race([redis.connect().then(() => redis.ping()), limit.promise]);
    return null;
  } catch (err) {
    return `${where}: ${reason(seen ?? err)}`;
  } finally {
    limit.clear();
    redis.disconnect();
  }
}

/** What is not answering (empty when both are), one line each. */
export async function missingServices(): Promise<string[]> {
  return (await Promise.all([checkPostgres(), checkRedis()])).filter((m): m is string => m !== null);
}

export default async function setup(): Promise<void> {
  const missing = await missingServices();
  if (missing.length === 0) return;
  const message = [
    'The test suite needs PostgreSQL and Redis, and could not use:',
    ...missing.map((m) => `  - ${m}`),
    'Start them on their default ports (PostgreSQL on 127.0.0.1:5432, user postgres without a password; Redis on 127.0.0.1:6379),',
    'e.g. on Debian: pg_ctlcluster <version> main start; redis-server --daemonize yes --bind 127.0.0.1 --save "" --appendonly no',
    '(.ci/run starts both when they are installed), or point TEST_DATABASE_URL / TEST_REDIS_URL at servers that run.',
  ].join('\n');
  // Exit here: a thrown error would be printed under "No test files found", which misleads.
  process.stderr.write(`\n${message}\n\n`);
  process.exit(1);
}
