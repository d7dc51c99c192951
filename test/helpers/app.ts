// Builds real apps for tests: real config parsing, real keys, a real database
// (PGlite or PostgreSQL) and a real store (in-process or Redis).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createApp, prepareDatabase, type AppHandle, type AppOptions } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Database } from '../../src/db/connect.js';
import type { Deps } from '../../src/deps.js';
import { createLogger } from '../../src/lib/logger.js';
import { createMetrics } from '../../src/lib/metrics.js';
import { createMailer } from '../../src/boot.js';
import { loadKeyRing, type KeyRing } from '../../src/security/key-ring.js';
import { loadSecretBox } from '../../src/security/secret-box.js';
import { MemoryStore } from '../../src/store/memory.js';
import { RedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { REDIS_URL } from './services.js';

export const ADMIN = { email: 'root@example.test', password: 'Admin-Password-1!' };

/**
 * One provider RSA key per test process: generating one (about 0.3 s) for every
 * app's fresh DATA_DIR would slow the whole suite. Made on first use.
 */
let rsaKey: string | undefined;
export const testRsaKey = () =>
  (rsaKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATA_DIR: mkdtempSync(join(tmpdir(), 'auth-test-')),
    JWT_RSA_PRIVATE_KEY: testRsaKey(),
    // Cheap hashes keep the suite fast; timing tests set their own.
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_TIME_COST: '1',
    LOG_LEVEL: 'debug',
    RATE_LIMIT_REQUESTS: '100000',
    BOOTSTRAP_ADMIN_EMAIL: ADMIN.email,
    BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
    ...overrides,
  });
}

/** Captures every log line so tests can search it for secrets. */
export class LogCapture extends Writable {
  lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void) {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    cb();
  }
  get text() {
    return this.lines.join('\n');
  }
}

export function redisStore(prefix = `test:${randomBytes(4).toString('hex')}:`, url = REDIS_URL): RedisStore {
  return new RedisStore({ url, prefix });
}

export type TestApp = AppHandle & { deps: Deps; logs: LogCapture; request: AppHandle['app']['request'] };

export async function createTestApp(opts: {
  database: Database;
  store?: Store;
  config?: Config;
  overrides?: Record<string, string>;
  keyRing?: KeyRing;
  clock?: () => number;
  app?: AppOptions;
  prepare?: boolean;
}): Promise<TestApp> {
  const config = opts.config ?? testConfig(opts.overrides);
  const logs = new LogCapture();
  const logger = createLogger(config.logLevel, logs);
  const deps: Deps = {
    config,
    database: opts.database,
    store: opts.store ?? new MemoryStore(),
    keyRing: opts.keyRing ?? (await loadKeyRing({ ...config.jwt, production: config.production, dataDir: config.dataDir })),
    clock: opts.clock ?? Date.now,
    logger,
    metrics: createMetrics(),
    mailer: createMailer(config, logger),
    secrets: loadSecretBox({ key: config.mfa.encryptionKey, previousKeys: config.mfa.previousEncryptionKeys, dataDir: config.dataDir }),
  };
  if (opts.prepare !== false) await prepareDatabase(deps);
  const handle = createApp(deps, { audit: { flushMs: 50 }, ...opts.app });
  return { ...handle, deps, logs, request: handle.app.request.bind(handle.app) };
}
