// The provider's endpoints under /oauth2, composed for oauthSurface().
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import { authorizeRoutes } from './authorize.routes.js';
import { tokenRoutes } from './token.routes.js';
import type { OAuthEnv } from './env.js';

export function oauthEndpoints(svc: AppServices): Hono<OAuthEnv> {
  const endpoints = new Hono<OAuthEnv>();
  // The browser endpoints: authorize, consent, logout.
  endpoints.route('/', authorizeRoutes(svc));
  // The token side: token, userinfo, revoke, introspect, with their per-client CORS.
  endpoints.route('/', tokenRoutes(svc));
  return endpoints;
}
