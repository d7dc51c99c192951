// Upstream identity providers for the external sign-in's tests: oidc-provider
// (a known-good issuer) with accounts of every kind the linking rules tell
// apart, and a tiny hand-written issuer whose token endpoint signs whatever
// ID token a test asks for (another issuer, another audience, expired, a
// wrong nonce), to prove each check refuses it.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { ServedProvider } from './oauth.js';
import { type PeerAccount, type PeerProvider, startOidcProvider } from './oidc-peers.js';

export const UPSTREAM_SECRET = 'upstream-secret-0123456789-0123456789';

/** Our callback URL for a provider id. */
export const callbackOf = (publicUrl: string, providerId: string) => `${publicUrl}/auth/external/${providerId}/callback`;

type Registered = { id: string; issuer: string; clientId: string; trustEmailVerified?: boolean; name?: string; scopes?: string[] };

/** Register an upstream OpenID provider at our service as an admin does: POST /admin/identity-providers. */
export async function addUpstream(p: Pick<ServedProvider, 'call' | 'admin'>, r: Registered & { clientSecret?: string }): Promise<void> {
  const res = await p.call('POST', '/admin/identity-providers', {
    token: p.admin.accessToken,
    body: {
      id: r.id,
      type: 'oidc',
      name: r.name ?? `Provider ${r.id}`,
      issuer: r.issuer,
      clientId: r.clientId,
      clientSecret: r.clientSecret ?? UPSTREAM_SECRET,
      scopes: r.scopes ?? ['openid', 'email', 'profile'],
      trustEmailVerified: r.trustEmailVerified ?? true,
      enabled: true,
    },
  });
  if (res.status !== 201) throw new Error(`POST /admin/identity-providers: ${res.status} ${res.text}`);
}

/** Turn a provider on or off (PUT /admin/identity-providers/:id; the secret is kept). */
export async function setUpstreamEnabled(p: Pick<ServedProvider, 'call' | 'admin'>, r: Registered, enabled: boolean): Promise<void> {
  const res = await p.call('PUT', `/admin/identity-providers/${r.id}`, {
    token: p.admin.accessToken,
    body: {
      type: 'oidc',
      name: r.name ?? `Provider ${r.id}`,
      issuer: r.issuer,
      clientId: r.clientId,
      scopes: r.scopes ?? ['openid', 'email', 'profile'],
      trustEmailVerified: r.trustEmailVerified ?? true,
      enabled,
    },
  });
  if (res.status !== 200) throw new Error(`PUT /admin/identity-providers/${r.id}: ${res.status} ${res.text}`);
}

/** oidc-provider with one confidential client whose redirect URIs are our callbacks for `providerIds`. */
export async function startUpstream(opts: {
  publicUrl: string;
  providerIds: string[];
  accounts: Record<string, PeerAccount>;
  clientId?: string;
}): Promise<PeerProvider & { clientId: string }> {
  const clientId = opts.clientId ?? 'our-service';
  const peer = await startOidcProvider({
    clients: [
      {
        client_id: clientId,
        client_secret: UPSTREAM_SECRET,
        redirect_uris: opts.providerIds.map((id) => callbackOf(opts.publicUrl, id)),
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    accounts: opts.accounts,
  });
  return { ...peer, clientId };
}

/** What the crafted issuer's next ID token gets wrong. */
export type IdTokenFlaw = 'none' | 'issuer' | 'audience' | 'expired' | 'nonce' | 'signature';

export type CraftedIssuer = {
  issuer: string;
  clientId: string;
  /** The flaw of every ID token from now on. */
  flaw: IdTokenFlaw;
  /** Claims of every ID token from now on, over the defaults (sub crafted-user, a verified crafted@example.test); {} resets. */
  claims: Record<string, unknown>;
  /** How the client authenticated at the token endpoint, per request. */
  readonly tokenAuth: string[];
  stop(): Promise<void>;
};

/**
 * A minimal OpenID issuer on loopback: discovery (listing only
 * client_secret_post), JWKS, an authorization endpoint that signs the user
 * `crafted-user` in at once, and a token endpoint (PKCE checked) whose ID token
 * has the current `flaw`.
 */
export async function startCraftedIssuer(clientId = 'crafted-client'): Promise<CraftedIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const other = await generateKeyPair('RS256');
  const kid = randomBytes(6).toString('hex');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { nonce: string; challenge: string; redirectUri: string }>();
  const state = { flaw: 'none' as IdTokenFlaw, tokenAuth: [] as string[], claims: {} as Record<string, unknown> };
  let issuer = '';

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  };
  const bodyOf = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    });

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_post'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
    if (url.pathname === '/authorize') {
      const code = randomBytes(16).toString('base64url');
      const redirectUri = url.searchParams.get('redirect_uri') ?? '';
      codes.set(code, { nonce: url.searchParams.get('nonce') ?? '', challenge: url.searchParams.get('code_challenge') ?? '', redirectUri });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      const form = new URLSearchParams(await bodyOf(req));
      state.tokenAuth.push(req.headers.authorization ? 'client_secret_basic' : form.has('client_secret') ? 'client_secret_post' : 'none');
      const grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      if (!grant || grant.challenge !== challenge || form.get('client_secret') !== UPSTREAM_SECRET || form.get('client_id') !== clientId) {
        return json(res, 400, { error: 'invalid_grant' });
      }
      const now = Math.floor(Date.now() / 1000);
      const flaw = state.flaw;
      const idToken = await new SignJWT({
        nonce: flaw === 'nonce' ? 'another-nonce' : grant.nonce,
        email: 'crafted@example.test',
        email_verified: true,
        name: 'Crafted User',
        ...state.claims,
      })
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuer(flaw === 'issuer' ? 'https://another-issuer.example' : issuer)
        .setAudience(flaw === 'audience' ? 'another-client' : clientId)
        .setSubject(typeof state.claims.sub === 'string' ? state.claims.sub : 'crafted-user')
        .setIssuedAt(flaw === 'expired' ? now - 7200 : now)
        .setExpirationTime(flaw === 'expired' ? now - 3600 : now + 300)
        .sign(flaw === 'signature' ? other.privateKey : privateKey);
      return json(res, 200, {
        access_token: randomBytes(16).toString('base64url'),
        token_type: 'Bearer',
        expires_in: 300,
        id_token: idToken,
      });
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  void privateKey;
  return {
    issuer,
    clientId,
    get flaw() {
      return state.flaw;
    },
    set flaw(f: IdTokenFlaw) {
      state.flaw = f;
    },
    get claims() {
      return state.claims;
    },
    set claims(c: Record<string, unknown>) {
      state.claims = c;
    },
    get tokenAuth() {
      return state.tokenAuth;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
