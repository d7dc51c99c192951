// Node entry: config -> deps -> serve -> graceful shutdown (the shared part is in boot.ts).
import { serve } from '@hono/node-server';
import { runMain, type Listen } from './boot.js';

const nodeListen: Listen = (handle, { port, hostname }) =>
  new Promise((resolve, reject) => {
    // A client that stalls its headers or body is cut off (408) instead of
    // holding a socket and a handler: the whole request must arrive within
    // REQUEST_TIMEOUT_SECONDS, its headers within 10 s of that; checked every second.
    const requestTimeout = handle.services.config.requestTimeoutSeconds * 1000;
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

await runMain(nodeListen);
