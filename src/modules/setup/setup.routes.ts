// /setup: the first admin, created with the one-time token from DATA_DIR/setup-token.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { SetupAdminBody, SetupAdminSchema } from './setup.schemas.js';
import { assertSetupOpen, createFirstAdmin } from './setup.service.js';

export const setupRoutes = (svc: AppServices) =>
  new Hono<AppEnv>().post(
    '/admin',
    declareRoute({
      action: 'setup.admin',
      personal: true,
      summary: 'Create the first admin with the setup token',
      description:
        'Open while nobody holds `admin` and `NODE_ENV` is not `production`: the token is in `DATA_DIR/setup-token`, written at start. The user gets `admin`, its email counts as verified, and the token file is deleted. A wrong token is 403; once an admin exists, or in production, the route answers 404 as if it did not exist (before the body is validated).',
      tags: ['setup'],
      body: true,
      responses: { 201: SetupAdminSchema },
      errors: ['forbidden', 'not_found', 'email_taken'],
    }),
    // Closed, the route is indistinguishable from an unknown one: 404 before the body is judged.
    async (_c, next) => {
      await assertSetupOpen(svc);
      await next();
    },
    validate('json', SetupAdminBody),
    async (c) => {
      const user = await createFirstAdmin(svc, c.req.valid('json'));
      c.set('auditActor', user.id);
      c.set('auditDetail', 'setup_admin_created');
      return c.json({ user }, 201);
    },
  );
