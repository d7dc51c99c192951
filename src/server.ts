// Node entry: config -> deps -> serve -> graceful shutdown.
import { serve } from '@hono/node-server';
import { createApp, prepareDatabase } from './app.js';
import { ConfigError, loadConfig, loadDotEnv, type Config } from './config.js';
import { connectDatabase, type Database } from './db/connect.js';
import { createLogger, type Logger } from './lib/logger.js';
import { pruneAuditLog } from './modules/admin/admin.service.js';
import { loadKeyRing } from './security/tokens.js';
import { MemoryStore } from './store/memory.js';
import { RedisStore } from './store/redis.js';
import type { Store } from './store/store.js';

export type Started = { port: number; close: () => Promise<void> };

export async function buildDeps(config: Config, logger: Logger) {
  const database: Database = await connectDatabase({ ...config.database, dataDir: config.dataDir });
  // Set once the app (and its metrics) exist; Redis may report trouble before that.
  let degraded: ((op: string) => void) | undefined;
  let store: Store;
  if (config.redisUrl) {
    let lastWarn = 0;
    const redis = new RedisStore({
      url: config.redisUrl,
      onDegraded: (operation, err) => {
        const now = Date.now();
        if (now - lastWarn > 5_000) {
          lastWarn = now;
          logger.warn({ operation, err: (err as Error).message }, 'redis unreachable: per-instance limits, database for sessions');
        }
        degraded?.(operation);
      },
      onRecovered: () => logger.info('redis is back: cached session and role state cleared'),
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
  const keys = await loadKeyRing({ privateKey: config.jwt.privateKey, publicKeys: config.jwt.publicKeys, dataDir: config.dataDir });
  return {
    deps: { config, database, store, keys, clock: Date.now, logger },
    onDegraded: (fn: (op: string) => void) => {
      degraded = fn;
    },
  };
}

export async function start(config: Config, logger = createLogger(config.logLevel)): Promise<Started> {
  const { deps, onDegraded } = await buildDeps(config, logger);
  await prepareDatabase(deps);
  const handle = createApp(deps, { defaultMetrics: true });
  onDegraded((operation) => handle.runtime.metrics.storeDegraded.inc({ operation }));

  const prune = setInterval(() => {
    pruneAuditLog(handle.runtime).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'audit pruning failed'));
  }, 3600_000);
  prune.unref();

  const { port, server } = await new Promise<{ port: number; server: ReturnType<typeof serve> }>((resolve) => {
    const server = serve({ fetch: handle.app.fetch, port: config.port, hostname: config.host }, (info) =>
      resolve({ port: info.port, server }),
    );
  });
  logger.info({ port, host: config.host, database: deps.database.kind, store: deps.store.kind }, 'auth-system listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      clearInterval(prune);
      // Stop accepting, let in-flight requests finish (bounded), then flush and close.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          resolve();
        }, config.shutdownTimeoutSeconds * 1000);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      await handle.stop();
      await deps.store.close();
      await deps.database.close();
      logger.info('stopped');
    })());
  return { port, close };
}

async function main(): Promise<void> {
  loadDotEnv();
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
    started = await start(config, logger);
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'failed to start');
    process.exit(1);
  }
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    started
      .close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

// Run only as the entry point (tests import start()).
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('server.ts') || process.argv[1]?.endsWith('server.js')) {
  await main();
}
