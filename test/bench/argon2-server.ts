// Scenario 3's yardstick: the same process layout as the service (Hono on
// @hono/node-server, one Node process) doing nothing per request but what a
// login cannot avoid: parse the JSON body and verify one argon2id hash with the
// service's parameters (ARGON2_* env, same defaults), through @node-rs/argon2's
// async API (libuv thread pool), as the service does.
import { serve } from '@hono/node-server';
import { hash, verify } from '@node-rs/argon2';
import { Hono } from 'hono';

const params = {
  memoryCost: Number(process.env.ARGON2_MEMORY_KIB ?? 19_456),
  timeCost: Number(process.env.ARGON2_TIME_COST ?? 2),
  parallelism: Number(process.env.ARGON2_PARALLELISM ?? 1),
  algorithm: 2, // argon2id (a const enum in the library's types)
};
const password = process.env.BENCH_PASSWORD ?? 'bench user password 1234';
const stored = await hash(password.normalize('NFKC'), params);

const app = new Hono()
  .get('/healthz', (c) => c.json({ status: 'ok' }))
  .post('/auth/login', async (c) => {
    const body = await c.req.json<{ email: string; password: string }>();
    const ok = await verify(stored, body.password.normalize('NFKC'));
    return ok ? c.json({ ok: true }) : c.json({ ok: false }, 401);
  });

const port = Number(process.env.PORT ?? 3101);
const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
const stop = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
