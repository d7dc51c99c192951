// /.well-known: public documents for any client or resource server (RFC 8615):
// the provider's metadata and its keys. No credentials are read here: an
// Authorization header is none of their business. Cached for five minutes and
// readable from any origin (they are public).
import { type Context, Hono } from 'hono';
import { resolver } from 'hono-openapi';
import type { z } from 'zod';
import type { AppServices } from '../../deps.js';
import { oauthRoute } from './route-doc.js';
import { DiscoverySchema, discoveryDocument, JwksSchema } from '../../provider/discovery.js';
import type { OAuthEnv } from './env.js';

/**
 * A public document's declaration: its OpenAPI operation (no security, no
 * permission) and the audit action the access log records it under.
 */
const publicDocument = (action: string, summary: string, schema: z.ZodType) =>
  oauthRoute({
    action,
    summary,
    description: 'Public: needs no credentials, and ignores any sent.',
    responses: { 200: { description: summary, content: { 'application/json': { schema: resolver(schema) } } } },
    schemas: { 200: schema },
  });

const PUBLIC_HEADERS = { 'Cache-Control': 'public, max-age=300', 'Access-Control-Allow-Origin': '*' } as const;

export const wellKnownRoutes = (svc: AppServices) => {
  // Both are fixed for the app's life: built once.
  const metadata = discoveryDocument(svc);
  const metadataRoute = (action: string, summary: string) =>
    [publicDocument(action, summary, DiscoverySchema), (c: Context) => c.json(metadata, 200, PUBLIC_HEADERS)] as const;
  return new Hono<OAuthEnv>()
    .get('/jwks.json', publicDocument('auth.jwks', 'Public keys that verify access tokens and ID tokens', JwksSchema), (c) =>
      c.json(svc.keyRing.jwks, 200, PUBLIC_HEADERS),
    )
    .get('/openid-configuration', ...metadataRoute('oauth.discovery', 'OpenID Provider metadata (OpenID Connect Discovery 1.0)'))
    .get(
      '/oauth-authorization-server',
      ...metadataRoute('oauth.authorization_server_metadata', 'Authorization server metadata (RFC 8414)'),
    );
};
