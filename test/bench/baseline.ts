// The bench's baseline: a bare Hono app answering GET /ping with small JSON,
// served by @hono/node-server in its own process, like the service. Scenarios
// 1 and 2 are reported as fractions of its throughput, measured in the same run.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono().get('/ping', (c) => c.json({ status: 'ok' }));

const port = Number(process.env.PORT ?? 3100);
const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
const stop = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
