// The OpenID provider bench's yardstick (test/bench/oidc.ts): oidc-provider v9,
// the certified Node provider, in its own process like the service: RS256, its
// in-memory adapter, one confidential client (BENCH_OIDC_CLIENT_ID /
// BENCH_OIDC_CLIENT_SECRET, redirect URI BENCH_OIDC_REDIRECT_URI) and one
// account (`bench-user`). The bench signs in through its development
// interactions and measures the same flows it measures on the service.
import { startOidcProvider } from '../helpers/oidc-peers.js';

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};

const op = await startOidcProvider({
  port: Number(process.env.PORT ?? 3103),
  clients: [
    {
      client_id: env('BENCH_OIDC_CLIENT_ID'),
      client_secret: env('BENCH_OIDC_CLIENT_SECRET'),
      redirect_uris: [env('BENCH_OIDC_REDIRECT_URI')],
      grant_types: ['authorization_code', 'refresh_token'],
    },
  ],
  accounts: { 'bench-user': { email: 'bench-user@example.test', name: 'Bench User' } },
});
console.log(`oidc-provider yardstick at ${op.issuer}`);

const stop = () => {
  void op.stop().then(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
