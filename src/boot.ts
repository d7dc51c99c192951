// Runtime-neutral boot shared by the Node, Bun and Deno entries: config -> deps
// -> database ready -> app -> listen -> graceful shutdown. An entry supplies only
// how its runtime listens (and reads the peer address); everything else is here.
import { createApp, prepareDatabase, type AppHandle, type AppOptions } from './app.js';
import { ConfigError, loadConfig, loadDotEnv, type Config } from './config.js';
import { connectDatabase, type Database } from './db/connect.js';
import type { Deps } from './deps.js';
import { prepareDataDir } from './lib/data-dir.js';
import { createLogger, type Logger } from './lib/logger.js';
import { createMetrics } from './lib/metrics.js';
import { FileMailer } from './adapters/mail/file-mailer.js';
import { SmtpMailer } from './adapters/mail/smtp-mailer.js';
import type { Mailer } from './adapters/mail/mailer.js';
import { pruneAuditLog } from './modules/admin/admin.service.js';
import { metricsApp } from './surfaces/ops/routes.js';
import { prepareSetupToken } from './modules/setup/setup.service.js';
import { loadKeyRing } from './security/key-ring.js';
import { loadSecretBox } from './security/secret-box.js';
import { MemoryStore } from './store/memory.js';
import { RedisStore } from './store/redis.js';
import type { Store } from './store/store.js';

export type Started = { port: number; close: () => Promise<void> };

/** A runtime's listening server. */
export type Listening = {
  port: number;
  /** Stop accepting, let in-flight requests finish for up to graceMs, then drop what is left. */
  close(graceMs: number): Promise<void>;
};

/** What a listener serves: the app (or, with METRICS_PORT, the metrics app) and the services it was built with. */
export type Served = Pick<AppHandle, 'services'> & { app: { fetch: AppHandle['app']['fetch'] } };

/** How a runtime serves a fetch handler (Node: @hono/node-server, Bun.serve, Deno.serve). */
export type Listen = (handle: Served, where: { port: number; hostname: string }) => Promise<Listening>;

/** SMTP when SMTP_URL is set; otherwise (never in production) .eml files under DATA_DIR/mail. */
export function createMailer(config: Config, logger: Logger): Mailer {
  return config.mail.smtpUrl
    ? new SmtpMailer({ url: config.mail.smtpUrl, from: config.mailFrom })
    : new FileMailer(config.dataDir, config.mailFrom, logger);
}

export async function buildDeps(config: Config, logger: Logger) {
  // DATA_DIR is made private (umask 0o077 too) before anything is written there. With a
  // database URL and a configured key nothing is, and the file system may be read-only.
  if (!config.database.url || !config.jwt.privateKey || !config.mail.smtpUrl || !config.mfa.encryptionKey) {
    const { umaskSet, umaskError, failed } = prepareDataDir(config.dataDir);
    if (!umaskSet)
      logger.warn(
        { dataDir: config.dataDir, reason: umaskError },
        'process umask not set: DATA_DIR is 0700, its files keep the modes they are created with',
      );
    if (failed.length > 0)
      logger.warn({ dataDir: config.dataDir, paths: failed.slice(0, 10), count: failed.length }, 'DATA_DIR: could not make these private');
  }
  // Process metrics too: one app per process here (tests build apps without them).
  const metrics = createMetrics({ defaultMetrics: true });
  const database: Database = await connectDatabase({ ...config.database, dataDir: config.dataDir });
  let store: Store;
  if (config.redisUrl) {
    let lastWarn = 0;
    const redis = new RedisStore({
      url: config.redisUrl,
      onDegraded: (operation, err) => {
        const now = Date.now();
        if (now - lastWarn > 5_000) {
          lastWarn = now;
          logger.warn({ operation, err }, 'redis unreachable: per-instance limits, database for sessions');
        }
        metrics.storeDegraded.inc({ operation });
      },
      onRecovered: () => logger.info('redis is back: cached session and role state cleared'),
      nearCache: config.redisNearCache,
      onNearCache: (live, reason) => {
        metrics.nearCacheLive.set(live ? 1 : 0);
        if (live) logger.info({ reason }, 'near-cache on: session and role state served from memory, kept true by Redis invalidation');
        else {
          metrics.nearCacheFlushes.inc();
          logger.warn({ reason }, 'near-cache off: flushed, every request reads Redis until the invalidation channel is back');
        }
      },
    });
    store = redis;
    try {
      await redis.ready(5_000);
    } catch {
      logger.warn('redis is not answering at start; continuing degraded until it does');
    }
  } else {
    store = new MemoryStore();
  }
  const keyRing = await loadKeyRing({ ...config.jwt, production: config.production, dataDir: config.dataDir });
  const mailer = createMailer(config, logger);
  const secrets = loadSecretBox({
    key: config.mfa.encryptionKey,
    previousKeys: config.mfa.previousEncryptionKeys,
    dataDir: config.dataDir,
  });
  const deps: Deps = { config, database, store, keyRing, clock: Date.now, logger, metrics, mailer, secrets };
  return deps;
}

/** Build and serve the app with the runtime's listener; close() drains, flushes and disconnects. */
export async function startWith(
  listen: Listen,
  config: Config,
  logger: Logger = createLogger(config.logLevel),
  appOptions: AppOptions = {},
): Promise<Started> {
  const deps = await buildDeps(config, logger);
  let handle: AppHandle;
  let server: Listening | undefined;
  // METRICS_PORT: GET /metrics on a listener of its own (and not on the main one).
  let metricsServer: Listening | undefined;
  try {
    await prepareDatabase(deps);
    // First run: a setup token while no admin exists; a leftover one removed once one does.
    await prepareSetupToken(deps);
    handle = createApp(deps, appOptions);
    await handle.services.dummyHash;
    server = await listen(handle, { port: config.port, hostname: config.host });
    if (config.metricsListener) {
      const { port, host } = config.metricsListener;
      metricsServer = await listen({ services: handle.services, app: metricsApp(handle.services) }, { port, hostname: host });
    }
  } catch (err) {
    // A failed start leaves no connection open (a pool or Redis socket would keep the process alive).
    await server?.close(0).catch(() => {});
    await deps.store.close().catch(() => {});
    await deps.database.close().catch(() => {});
    throw err;
  }

  const prune = setInterval(() => {
    pruneAuditLog(handle.services).catch((err: unknown) => logger.warn({ err }, 'audit pruning failed'));
  }, 3600_000);
  (prune as { unref?: () => void }).unref?.();

  const listening = server;
  logger.info(
    {
      port: listening.port,
      host: config.host,
      ...(metricsServer ? { metricsPort: metricsServer.port, metricsHost: config.metricsListener!.host } : {}),
      database: deps.database.kind,
      store: deps.store.kind,
      runtime: runtimeName(),
    },
    'auth-system listening',
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      clearInterval(prune);
      await Promise.all([
        listening.close(config.shutdownTimeoutSeconds * 1000),
        metricsServer?.close(config.shutdownTimeoutSeconds * 1000),
      ]);
      // The audit log and counters are flushed before the database they go to is closed.
      await handle.stop();
      await deps.store.close();
      await deps.mailer.close();
      await deps.database.close();
      logger.info('stopped');
    })());
  return { port: listening.port, close };
}

/** The process around startWith: .env and config, exit 1 on a bad start, graceful SIGTERM/SIGINT. */
export async function runMain(listen: Listen, appOptions: AppOptions = {}): Promise<void> {
  // Variables already set win over .env. Deno's process.loadEnvFile (2.9) overwrites
  // them, unlike Node's and Bun's, so they are put back.
  const preset = { ...process.env };
  loadDotEnv();
  Object.assign(process.env, preset);
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  let started: Started;
  try {
    started = await startWith(listen, config, logger, appOptions);
  } catch (err) {
    logger.fatal({ err }, 'failed to start');
    process.exit(1);
  }
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    started
      .close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

/** For the start-up log line: which runtime and version is serving. */
function runtimeName(): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  if (g.Bun) return `bun ${g.Bun.version}`;
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  return `node ${process.versions.node}`;
}
