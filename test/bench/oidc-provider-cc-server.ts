// The service-client bench's yardstick (test/bench/service-clients.ts):
// oidc-provider v9 in its own process with its clientCredentials and
// introspection features on and one confidential client
// (BENCH_CC_CLIENT_ID / BENCH_CC_CLIENT_SECRET, client_secret_basic). A token
// asked for with `resource=BENCH_CC_RESOURCE` is an RFC 9068-style JWT signed
// RS256 (as ours are); one asked for without a resource is its opaque token,
// kept in its store: the kind its introspection endpoint answers for.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const resource = env('BENCH_CC_RESOURCE');

const { default: Provider } = await import('oidc-provider');
let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
const server = createServer((req, res) => {
  if (handle) handle(req, res);
  else res.writeHead(503).end();
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(process.env.PORT ?? 3104), '127.0.0.1', () => resolve());
});
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const { privateKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
const jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: env('BENCH_CC_CLIENT_ID'),
      client_secret: env('BENCH_CC_CLIENT_SECRET'),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'api:read',
    },
  ],
  jwks: { keys: [jwk as never] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['api:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Only the token's own client learns about it (ours answers the same way).
    introspection: {
      enabled: true,
      allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) =>
        token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: (_ctx: unknown, indicator: string) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return { scope: 'api:read', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  ttl: { AccessToken: 3600, ClientCredentials: 3600 },
} as never);
provider.proxy = false;
handle = provider.callback();
console.log(`oidc-provider service-client yardstick at ${issuer}`);

const stop = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
