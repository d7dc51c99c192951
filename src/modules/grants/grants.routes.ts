// /users/me/grants: the apps the user connected (OAuth grants), and revoking one.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { ClientIdParam, GrantListSchema } from './grants.schemas.js';
import { listGrants, revokeGrant } from './grants.service.js';

export const grantsRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .get(
      '/me/grants',
      declareRoute({
        action: 'users.me.grants.list',
        personal: true,
        summary: 'Your connected apps: what you allowed each OAuth client',
        description: 'One per app you allowed, most recently changed first; `scopes` is what you allowed it.',
        permission: 'profile:read',
        tags: ['users'],
        responses: { 200: GrantListSchema },
      }),
      async (c) => c.json({ items: await listGrants(svc, c.get('caller').userId) }, 200),
    )
    .delete(
      '/me/grants/:clientId',
      declareRoute({
        action: 'users.me.grants.revoke',
        personal: true,
        summary: 'Disconnect an app: revoke its grant and every token issued under it',
        description:
          'The app must ask for consent again; its refresh tokens stop working at once and its access tokens on the next request, in every session.',
        permission: 'profile:update',
        tags: ['users'],
        body: true,
        responses: { 204: null },
        errors: ['client_not_found'],
      }),
      validate('param', ClientIdParam),
      async (c) => {
        await revokeGrant(svc, c.get('caller').userId, c.req.valid('param').clientId);
        return c.body(null, 204);
      },
    );
