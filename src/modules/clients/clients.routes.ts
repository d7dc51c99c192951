// /admin/clients: OAuth clients (API.md "OAuth clients"): list, read, register,
// replace, rotate the secret, delete, and each client's sign-ins per hour.
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import {
  ClientListQuery,
  ClientListSchema,
  ClientParam,
  ClientSchema,
  ClientSecretSchema,
  ClientStatsQuery,
  ClientStatsSchema,
  CreateClientBody,
  CreatedClientSchema,
  UpdateClientBody,
} from './clients.schemas.js';
import {
  clientGuard,
  clientStats,
  createClient,
  deleteClient,
  getClient,
  listClients,
  rotateClientSecret,
  updateClient,
} from './clients.service.js';

const TAGS = ['clients'];

export const clientsRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .get(
      '/clients',
      declareRoute({
        action: 'clients.list',
        summary: 'List OAuth clients, newest first',
        permission: 'clients:read',
        tags: TAGS,
        responses: { 200: ClientListSchema },
      }),
      validate('query', ClientListQuery),
      async (c) => c.json(await listClients(svc, c.req.valid('query')), 200),
    )
    .post(
      '/clients',
      declareRoute({
        action: 'clients.create',
        summary: 'Register an OAuth client',
        description:
          'A confidential client gets `clientSecret`, shown this once (only its SHA-256 is kept). The id is given (`^[A-Za-z0-9._-]{3,64}$`) or generated; a taken id is `400 validation_failed` on `id`. Giving the client roles needs every permission they carry.',
        permission: 'clients:manage',
        tags: TAGS,
        body: true,
        personal: true,
        responses: { 201: CreatedClientSchema },
        errors: ['invalid_redirect_uri', 'unknown_role'],
      }),
      validate('json', CreateClientBody),
      async (c) => {
        const caller = c.get('caller');
        const created = await createClient(svc, caller, c.req.valid('json'));
        c.set('auditDetail', `client_created: ${created.client.id}`);
        return c.json({ ...created.client, ...(created.clientSecret ? { clientSecret: created.clientSecret } : {}) }, 201);
      },
    )
    .get(
      '/clients/:id',
      declareRoute({
        action: 'clients.read',
        summary: 'Read an OAuth client',
        permission: 'clients:read',
        tags: TAGS,
        responses: { 200: ClientSchema },
        errors: ['client_not_found'],
      }),
      validate('param', ClientParam),
      async (c) => c.json(await getClient(svc, c.req.valid('param').id), 200),
    )
    .put(
      '/clients/:id',
      declareRoute({
        action: 'clients.update',
        summary: 'Replace an OAuth client’s writable fields',
        description:
          'The whole writable representation (never `clientSecret`). Becoming public drops the secret; becoming confidential needs a new secret from `POST /admin/clients/:id/secret`.',
        permission: 'clients:manage',
        tags: TAGS,
        body: true,
        responses: { 200: ClientSchema },
        errors: ['client_not_found', 'invalid_redirect_uri', 'unknown_role'],
      }),
      validate('param', ClientParam),
      validate('json', UpdateClientBody),
      async (c) => {
        const { id } = c.req.valid('param');
        const caller = c.get('caller');
        const client = await updateClient(svc, caller, id, c.req.valid('json'), { guard: await clientGuard(svc, caller) });
        c.set('auditDetail', `client_updated: ${id}`);
        return c.json(client, 200);
      },
    )
    .delete(
      '/clients/:id',
      declareRoute({
        action: 'clients.delete',
        summary: 'Delete an OAuth client and everything issued to it',
        permission: 'clients:manage',
        tags: TAGS,
        body: true,
        responses: { 204: null },
        errors: ['client_not_found'],
      }),
      validate('param', ClientParam),
      async (c) => {
        const { id } = c.req.valid('param');
        await deleteClient(svc, id, await clientGuard(svc, c.get('caller')));
        c.set('auditDetail', `client_deleted: ${id}`);
        return c.body(null, 204);
      },
    )
    .post(
      '/clients/:id/secret',
      declareRoute({
        action: 'clients.secret.rotate',
        summary: 'Replace a confidential client’s secret',
        description:
          'The new secret is shown this once. The old one keeps working for `OAUTH_SECRET_OVERLAP_SECONDS` (default 0); the client’s own client_credentials tokens issued before stop working on the next request. A public client: `400 validation_failed`.',
        permission: 'clients:manage',
        tags: TAGS,
        body: true,
        personal: true,
        responses: { 200: ClientSecretSchema },
        errors: ['client_not_found'],
      }),
      validate('param', ClientParam),
      async (c) => {
        const { id } = c.req.valid('param');
        const out = await rotateClientSecret(svc, id, await clientGuard(svc, c.get('caller')));
        c.set('auditDetail', `client_secret_rotated: ${id}`);
        return c.json(out, 200);
      },
    )
    .get(
      '/clients/:id/stats',
      declareRoute({
        action: 'clients.stats',
        summary: 'A client’s sign-ins per hour',
        description:
          'One bucket per hour (`start` on the hour, UTC), oldest first, the current hour last; `hours` is 1 to 168 (default 24). A sign-in is an authorization code exchanged for tokens.',
        permission: 'clients:read',
        tags: TAGS,
        responses: { 200: ClientStatsSchema },
        errors: ['client_not_found'],
      }),
      validate('param', ClientParam),
      validate('query', ClientStatsQuery),
      async (c) => c.json(await clientStats(svc, c.req.valid('param').id, c.req.valid('query').hours), 200),
    );
