// Scenario 8's yardstick: the same process layout as the service (Hono on
// @hono/node-server, one Node process) doing per request only the signature
// check a never-seen access token cannot skip: hono's JWS verify of the
// Authorization header's EdDSA token with the bench key, as the service does.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { verify } from 'hono/utils/jwt/jwt';
import { buildKeyRing } from '../../src/security/key-ring.js';

const ring = await buildKeyRing(process.env.JWT_PRIVATE_KEY ?? '');
const { alg, key } = [...ring.verifying.values()][0]!;

const app = new Hono()
  .get('/healthz', (c) => c.json({ status: 'ok' }))
  .get('/users/me', async (c) => {
    const token = (c.req.header('authorization') ?? '').slice('Bearer '.length);
    try {
      const claims = await verify(token, key, { alg, iss: 'auth-system', aud: 'auth-system' });
      return c.json({ id: claims.sub });
    } catch {
      return c.json({ code: 'invalid_token' }, 401);
    }
  });

const port = Number(process.env.PORT ?? 3102);
const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
const stop = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
