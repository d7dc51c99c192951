// The provider's endpoints under /oauth2, composed for oauthSurface().
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import { authorizeRoutes } from './authorize.routes.js';
import type { OAuthEnv } from './env.js';

export function oauthEndpoints(svc: AppServices): Hono<OAuthEnv> {
  const endpoints = new Hono<OAuthEnv>();
  // The browser endpoints: authorize, consent, logout.
  endpoints.route('/', authorizeRoutes(svc));
  // TOKEN HELPER: add `endpoints.route('/', tokenRoutes(svc));` here (token, userinfo, revoke, introspect).
  return endpoints;
}
