// Node entry: config -> deps -> serve -> graceful shutdown (the shared part is in boot.ts).
import { serve } from '@hono/node-server';
import type { Config } from './config.js';
import { runMain, startWith, type Listen, type Started } from './boot.js';
import { createLogger } from './lib/logger.js';

export { buildDeps, type Started } from './boot.js';

const nodeListen: Listen = (handle, { port, hostname }) =>
  new Promise((resolve, reject) => {
    // A client that stalls its headers or body is cut off (408) instead of
    // holding a socket and a handler: the whole request must arrive within
    // REQUEST_TIMEOUT_SECONDS, its headers within 10 s of that; checked every second.
    const requestTimeout = handle.runtime.config.requestTimeoutSeconds * 1000;
    const serverOptions = {
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 10_000),
      connectionsCheckingInterval: 1_000,
    };
    const server = serve({ fetch: handle.app.fetch, port, hostname, serverOptions }, (info) =>
      resolve({
        port: info.port,
        close: (graceMs) =>
          new Promise<void>((done) => {
            // Stop accepting, let in-flight requests finish (bounded), then drop the rest.
            const timer = setTimeout(() => {
              (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
              done();
            }, graceMs);
            timer.unref();
            server.close(() => {
              clearTimeout(timer);
              done();
            });
            (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
          }),
      }),
    );
    server.once('error', reject);
  });

export function start(config: Config, logger = createLogger(config.logLevel)): Promise<Started> {
  return startWith(nodeListen, config, logger);
}

// Run only as the entry point (tests import start()).
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('server.ts') || process.argv[1]?.endsWith('server.js')) {
  await runMain(nodeListen);
}
