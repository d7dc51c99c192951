// Request and response schemas of the identity providers module (API.md
// "Sign-in with external identity providers"): the upstream OpenID Connect
// issuers and GitHub instances users may sign in with.
import { z } from 'zod';
import { PLAIN_TEXT, singleLine } from '../../lib/schemas.js';

/** The slug in /auth/external/:provider. */
export const IDP_ID_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}$/;
const IDP_ID_MESSAGE = 'Must be 2 to 63 lower-case letters, digits or hyphens, starting with a letter or digit';
export const idpIdSchema = z.string().regex(IDP_ID_PATTERN, IDP_ID_MESSAGE);

export const IDP_TYPES = ['oidc', 'github'] as const;
export type IdpType = (typeof IDP_TYPES)[number];

export const DEFAULT_SCOPES: Record<IdpType, readonly string[]> = {
  oidc: ['openid', 'email', 'profile'],
  github: ['read:user', 'user:email'],
};

const unique = <T>(values: T[]) => new Set(values).size === values.length;
const UNIQUE = { message: 'Must not repeat a value' };
// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,200}$/;

const url = z.string().min(1).max(2000).refine(singleLine, PLAIN_TEXT);

export const IdentityProviderSchema = z.object({
  id: z.string(),
  type: z.enum(IDP_TYPES),
  /** The button's label. */
  name: z.string(),
  /** oidc: the issuer (discovery at `{issuer}/.well-known/openid-configuration`); null for github. */
  issuer: z.string().nullable(),
  /** github: the web and API origins; null for oidc. */
  githubUrl: z.string().nullable(),
  githubApiUrl: z.string().nullable(),
  clientId: z.string(),
  scopes: z.array(z.string()),
  /** Whether the provider's word that an email is verified is believed (automatic linking needs it). */
  trustEmailVerified: z.boolean(),
  enabled: z.boolean(),
  /** Whether a client secret is stored (the secret itself is write-only). */
  hasClientSecret: z.boolean(),
  /** `api` (made through this API) or `file` (IDENTITY_PROVIDERS_FILE: applied again at every start). */
  source: z.enum(['api', 'file']),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type IdentityProviderView = z.infer<typeof IdentityProviderSchema>;

export const IdentityProviderListSchema = z.object({ items: z.array(IdentityProviderSchema) });

export const PublicIdentityProviderListSchema = z.object({
  items: z.array(z.object({ id: z.string(), name: z.string(), type: z.enum(IDP_TYPES) })),
});

const fields = {
  type: z.enum(IDP_TYPES),
  name: z.string().trim().min(1).max(100).refine(singleLine, PLAIN_TEXT),
  issuer: url,
  githubUrl: url,
  githubApiUrl: url,
  clientId: z.string().min(1).max(500).refine(singleLine, PLAIN_TEXT),
  /** Write-only; stored encrypted. */
  clientSecret: z.string().min(1).max(2000).refine(singleLine, PLAIN_TEXT),
  scopes: z
    .array(z.string().regex(SCOPE_TOKEN, 'Must be a scope token (RFC 6749 §3.3): no space, quote or backslash'))
    .max(30)
    .refine(unique, UNIQUE),
  trustEmailVerified: z.boolean(),
  enabled: z.boolean(),
};

type TypeDependent = { type: IdpType; issuer?: string | undefined; githubUrl?: string | undefined; githubApiUrl?: string | undefined };

/** The fields that belong to the other type are refused, not ignored: a body meant for one type sent as the other is a mistake. */
function typeRules(v: TypeDependent, ctx: z.RefinementCtx) {
  if (v.type === 'oidc') {
    if (v.issuer === undefined) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'Required for an oidc provider' });
    for (const key of ['githubUrl', 'githubApiUrl'] as const) {
      if (v[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'Only for a github provider' });
    }
  } else if (v.issuer !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'Only for an oidc provider' });
  }
}

const createShape = {
  id: idpIdSchema,
  type: fields.type,
  name: fields.name,
  issuer: fields.issuer.optional(),
  githubUrl: fields.githubUrl.optional(),
  githubApiUrl: fields.githubApiUrl.optional(),
  clientId: fields.clientId,
  clientSecret: fields.clientSecret.optional(),
  /** Default: oidc `openid email profile`, github `read:user user:email`. */
  scopes: fields.scopes.optional(),
  trustEmailVerified: fields.trustEmailVerified.default(false),
  enabled: fields.enabled.default(true),
};

export const CreateIdentityProviderBody = z.strictObject(createShape).superRefine(typeRules);
export type CreateIdentityProvider = z.infer<typeof CreateIdentityProviderBody>;

/**
 * PUT: the whole writable representation. `clientSecret` absent keeps the
 * stored one, null removes it (a public client at the upstream), a string replaces it.
 */
export const UpdateIdentityProviderBody = z
  .strictObject({
    type: fields.type,
    name: fields.name,
    issuer: fields.issuer.optional(),
    githubUrl: fields.githubUrl.optional(),
    githubApiUrl: fields.githubApiUrl.optional(),
    clientId: fields.clientId,
    clientSecret: fields.clientSecret.nullable().optional(),
    scopes: fields.scopes,
    trustEmailVerified: fields.trustEmailVerified,
    enabled: fields.enabled,
  })
  .superRefine(typeRules);
export type UpdateIdentityProvider = z.infer<typeof UpdateIdentityProviderBody>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One entry of IDENTITY_PROVIDERS_FILE: the API's fields, the secret named by `clientSecretEnv` instead of given. */
export const DeclaredIdentityProviderSchema = z
  .strictObject({
    ...createShape,
    clientSecret: z.never({ message: 'Never in the file: name the environment variable holding it in clientSecretEnv' }).optional(),
    clientSecretEnv: z.string().regex(ENV_NAME, 'Must be an environment variable name').optional(),
  })
  .superRefine(typeRules);
export type DeclaredIdentityProvider = z.infer<typeof DeclaredIdentityProviderSchema>;

export const IdentityProvidersFileSchema = z
  .array(DeclaredIdentityProviderSchema)
  .refine((list) => unique(list.map((p) => p.id)), { message: 'Declares one id twice' });

export const IdentityProviderParam = z.strictObject({ id: idpIdSchema });
