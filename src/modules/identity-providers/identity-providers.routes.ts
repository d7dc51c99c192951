// /admin/identity-providers: the upstream providers users may sign in with
// (API.md "Sign-in with external identity providers"): list, read, add,
// replace, remove. And /auth/identity-providers: the enabled ones' buttons,
// for the sign-in and registration pages (our addition).
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import {
  CreateIdentityProviderBody,
  IdentityProviderListSchema,
  IdentityProviderParam,
  IdentityProviderSchema,
  PublicIdentityProviderListSchema,
  UpdateIdentityProviderBody,
} from './identity-providers.schemas.js';
import { createIdp, deleteIdp, getIdp, listIdps, publicIdps, updateIdp } from './identity-providers.service.js';

const TAGS = ['identity providers'];

const URL_RULES =
  '`issuer` (oidc), `githubUrl` and `githubApiUrl` (github): absolute, no fragment, no query, no credentials; `https` (an `http` URL only outside production).';

export const identityProvidersRoutes = (svc: AppServices) =>
  new Hono<AppEnv>()
    .get(
      '/identity-providers',
      declareRoute({
        action: 'idps.list',
        summary: 'List the upstream identity providers, in the order they were added',
        permission: 'idps:read',
        tags: TAGS,
        responses: { 200: IdentityProviderListSchema },
      }),
      async (c) => c.json(await listIdps(svc), 200),
    )
    .post(
      '/identity-providers',
      declareRoute({
        action: 'idps.create',
        summary: 'Add an upstream identity provider',
        description: `\`id\` is the slug in \`/auth/external/{id}\` (\`^[a-z0-9][a-z0-9-]{1,62}$\`); a taken id is \`400 validation_failed\` on \`id\`. ${URL_RULES} \`clientSecret\` is write-only (stored encrypted; a github provider needs it). Scopes default to \`openid email profile\` (oidc, which needs \`openid\`) or \`read:user user:email\` (github).`,
        permission: 'idps:manage',
        tags: TAGS,
        body: true,
        responses: { 201: IdentityProviderSchema },
      }),
      validate('json', CreateIdentityProviderBody),
      async (c) => {
        const created = await createIdp(svc, c.req.valid('json'));
        c.set('auditDetail', `idp_created: ${created.id}`);
        return c.json(created, 201);
      },
    )
    .get(
      '/identity-providers/:id',
      declareRoute({
        action: 'idps.read',
        summary: 'Read an upstream identity provider',
        permission: 'idps:read',
        tags: TAGS,
        responses: { 200: IdentityProviderSchema },
        errors: ['idp_not_found'],
      }),
      validate('param', IdentityProviderParam),
      async (c) => c.json(await getIdp(svc, c.req.valid('param').id), 200),
    )
    .put(
      '/identity-providers/:id',
      declareRoute({
        action: 'idps.update',
        summary: 'Replace an upstream identity provider’s writable fields',
        description: `The whole writable representation. \`clientSecret\` absent keeps the stored secret, \`null\` removes it, a string replaces it. The type cannot change. ${URL_RULES}`,
        permission: 'idps:manage',
        tags: TAGS,
        body: true,
        responses: { 200: IdentityProviderSchema },
        errors: ['idp_not_found'],
      }),
      validate('param', IdentityProviderParam),
      validate('json', UpdateIdentityProviderBody),
      async (c) => {
        const { id } = c.req.valid('param');
        const updated = await updateIdp(svc, id, c.req.valid('json'));
        c.set('auditDetail', `idp_updated: ${id}`);
        return c.json(updated, 200);
      },
    )
    .delete(
      '/identity-providers/:id',
      declareRoute({
        action: 'idps.delete',
        summary: 'Remove an upstream identity provider and every identity linked through it',
        description:
          'The identities linked through it are deleted with it: a user who could sign in only through it sets a password with `POST /auth/password/forgot` to get back in.',
        permission: 'idps:manage',
        tags: TAGS,
        body: true,
        responses: { 204: null },
        errors: ['idp_not_found'],
      }),
      validate('param', IdentityProviderParam),
      async (c) => {
        const { id } = c.req.valid('param');
        await deleteIdp(svc, id);
        c.set('auditDetail', `idp_deleted: ${id}`);
        return c.body(null, 204);
      },
    );

/** Mounted under /auth: open to anyone, like the sign-in page that shows its buttons. */
export const identityProvidersPublicRoutes = (svc: AppServices) =>
  new Hono<AppEnv>().get(
    '/identity-providers',
    declareRoute({
      action: 'auth.identity_providers',
      summary: 'The enabled upstream identity providers, for sign-in buttons',
      description: 'Each one signs in at `GET /auth/external/{id}`. In the order they were added.',
      tags: ['auth'],
      responses: { 200: PublicIdentityProviderListSchema },
    }),
    async (c) => c.json(await publicIdps(svc), 200),
  );
