// /.well-known: public documents for any client or resource server (RFC 8615).
// No credentials are read here: an Authorization header is none of their business.
import { Hono } from 'hono';
import { describeRoute, resolver } from 'hono-openapi';
import type { z } from 'zod';
import type { AppServices } from '../../deps.js';
import { ROUTE_META, type RouteMeta } from '../../middleware/route-meta.js';
import { JwksSchema } from '../../modules/auth/auth.schemas.js';
import type { OAuthEnv } from './env.js';

/**
 * A public document's declaration: its OpenAPI operation (no security, no
 * permission) and the audit action the access log records it under.
 */
function publicDocument(action: string, summary: string, schema: z.ZodType) {
  const meta: RouteMeta = { action, summary, tags: ['auth'], responses: { 200: schema } };
  const mw = describeRoute({
    operationId: action,
    summary,
    description: 'Public: needs no credentials, and ignores any sent.',
    tags: meta.tags,
    security: [],
    'x-permission': [],
    'x-audit-action': action,
    responses: { 200: { description: summary, content: { 'application/json': { schema: resolver(schema) } } } },
  } as Parameters<typeof describeRoute>[0]);
  return Object.assign(mw, { [ROUTE_META]: meta });
}

export const wellKnownRoutes = (svc: AppServices) =>
  new Hono<OAuthEnv>().get('/jwks.json', publicDocument('auth.jwks', 'Public keys that verify access tokens', JwksSchema), (c) =>
    c.json(svc.keyRing.jwks, 200, { 'Cache-Control': 'public, max-age=300' }),
  );
