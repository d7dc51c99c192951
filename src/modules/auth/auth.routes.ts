// /auth: register, login, refresh, logout; and the public keys at /.well-known.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { JwksSchema, LoginBody, RefreshBody, RegisterBody, RegisteredSchema, TokenPairSchema } from './auth.schemas.js';
import { login, logout, refresh, registerUser } from './auth.service.js';

// Token responses must never be cached (RFC 6749 §5.1).
const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export const authRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .post(
      '/register',
      declareRoute({
        action: 'auth.register',
        personal: true,
        summary: 'Create an account',
        permission: 'auth:register',
        tags: ['auth'],
        body: true,
        responses: { 201: RegisteredSchema },
        errors: ['email_taken'],
      }),
      validate('json', RegisterBody),
      async (c) => {
        const user = await registerUser(svc, c.req.valid('json'));
        return c.json({ user }, 201);
      },
    )
    .post(
      '/login',
      declareRoute({
        action: 'auth.login',
        summary: 'Sign in with email and password',
        description: 'Failures per account+address and per address are limited; past the limit even the right password gets 429.',
        tags: ['auth'],
        body: true,
        responses: { 200: TokenPairSchema },
        errors: ['invalid_credentials'],
      }),
      validate('json', LoginBody),
      async (c) => {
        const pair = await login(svc, { ...c.req.valid('json'), ip: c.get('clientIp') });
        return c.json(pair, 200, NO_STORE);
      },
    )
    .post(
      '/refresh',
      declareRoute({
        action: 'auth.refresh',
        summary: 'Rotate a refresh token for a new token pair',
        permission: 'auth:refresh',
        // Judged by the service on the refresh token's user, not on the caller.
        guard: null,
        tags: ['auth'],
        description:
          'Refresh tokens rotate. A spent token presented again revokes its whole session. The permission is judged on the refresh token’s user; no Bearer token is needed.',
        body: true,
        responses: { 200: TokenPairSchema },
        errors: ['refresh_token_reused', 'invalid_refresh_token', 'forbidden'],
      }),
      validate('json', RefreshBody),
      async (c) => {
        const pair = await refresh(svc, c.req.valid('json').refreshToken);
        return c.json(pair, 200, NO_STORE);
      },
    )
    .post(
      '/logout',
      declareRoute({
        action: 'auth.logout',
        summary: 'End the refresh token’s session (idempotent)',
        tags: ['auth'],
        body: true,
        responses: { 204: null },
      }),
      validate('json', RefreshBody),
      async (c) => {
        await logout(svc, c.req.valid('json').refreshToken);
        return c.body(null, 204);
      },
    );

export const wellKnownRoutes = (svc: AppServices) =>
  new Hono<AppEnv>().get(
    '/jwks.json',
    declareRoute({ action: 'auth.jwks', summary: 'Public keys that verify access tokens', tags: ['auth'], responses: { 200: JwksSchema } }),
    (c) => {
      return c.json(svc.keyRing.jwks, 200, { 'Cache-Control': 'public, max-age=300' });
    },
  );
