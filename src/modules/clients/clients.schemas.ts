// Request and response schemas of the OAuth clients module (API.md "OAuth clients").
import { z } from 'zod';
import { limitSchema, PLAIN_TEXT, singleLine } from '../../lib/schemas.js';
import { CLIENT_GRANT_TYPES, CLIENT_ID_PATTERN, CLIENT_SCOPES, ID_TOKEN_ALGS } from '../../provider/clients.js';

const CLIENT_ID_MESSAGE = 'Must be 3 to 64 letters, digits, dots, underscores or hyphens';
export const clientIdSchema = z.string().regex(CLIENT_ID_PATTERN, CLIENT_ID_MESSAGE);

const uri = z.string().min(1).max(2000).refine(singleLine, PLAIN_TEXT);
const uriList = z.array(uri).max(50);
const unique = <T>(values: T[]) => new Set(values).size === values.length;
const UNIQUE = { message: 'Must not repeat a value' };

export const ClientSchema = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(['confidential', 'public']),
  redirectUris: z.array(z.string()),
  postLogoutRedirectUris: z.array(z.string()),
  grantTypes: z.array(z.enum(CLIENT_GRANT_TYPES)),
  scopes: z.array(z.enum(CLIENT_SCOPES)),
  firstParty: z.boolean(),
  allowedOrigins: z.array(z.string()),
  idTokenSignedResponseAlg: z.enum(ID_TOKEN_ALGS),
  backchannelLogoutUri: z.string().nullable(),
  audiences: z.array(z.string()),
  roles: z.array(z.string()),
  /** `api` (registered through this API) or `file` (OAUTH_CLIENTS_FILE: applied again at every start). */
  source: z.enum(['api', 'file']),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type ClientView = z.infer<typeof ClientSchema>;

export const ClientListSchema = z.object({ items: z.array(ClientSchema), nextCursor: z.string().nullable() });
export const CreatedClientSchema = ClientSchema.extend({
  /** Confidential clients only: shown this once, stored hashed. */
  clientSecret: z.string().optional(),
});
export const ClientSecretSchema = z.object({ clientSecret: z.string() });

/** The writable representation: PUT takes all of it; POST may leave out what has a default. */
const writable = {
  name: z.string().trim().min(1).max(100).refine(singleLine, PLAIN_TEXT),
  type: z.enum(['confidential', 'public']),
  redirectUris: uriList.refine(unique, UNIQUE),
  postLogoutRedirectUris: uriList.refine(unique, UNIQUE),
  grantTypes: z.array(z.enum(CLIENT_GRANT_TYPES)).min(1).refine(unique, UNIQUE),
  scopes: z.array(z.enum(CLIENT_SCOPES)).refine(unique, UNIQUE),
  firstParty: z.boolean(),
  allowedOrigins: uriList.refine(unique, UNIQUE),
  idTokenSignedResponseAlg: z.enum(ID_TOKEN_ALGS),
  backchannelLogoutUri: uri.nullable(),
  audiences: z.array(z.string().min(1).max(200).refine(singleLine, PLAIN_TEXT)).max(20).refine(unique, UNIQUE),
  roles: z.array(z.string().min(1).max(40).refine(singleLine, PLAIN_TEXT)).max(50).refine(unique, UNIQUE),
};

export const DEFAULT_FIELDS = {
  type: 'confidential',
  redirectUris: [],
  postLogoutRedirectUris: [],
  grantTypes: ['authorization_code', 'refresh_token'],
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  firstParty: false,
  allowedOrigins: [],
  idTokenSignedResponseAlg: 'RS256',
  backchannelLogoutUri: null,
  audiences: [],
  roles: [],
} as const;

export const UpdateClientBody = z.strictObject(writable);
export type UpdateClient = z.infer<typeof UpdateClientBody>;

export const CreateClientBody = z.strictObject({
  id: clientIdSchema.optional(),
  name: writable.name,
  type: writable.type.default(DEFAULT_FIELDS.type),
  redirectUris: writable.redirectUris.default([]),
  postLogoutRedirectUris: writable.postLogoutRedirectUris.default([]),
  grantTypes: writable.grantTypes.default([...DEFAULT_FIELDS.grantTypes]),
  scopes: writable.scopes.default([...DEFAULT_FIELDS.scopes]),
  firstParty: writable.firstParty.default(false),
  allowedOrigins: writable.allowedOrigins.default([]),
  idTokenSignedResponseAlg: writable.idTokenSignedResponseAlg.default('RS256'),
  backchannelLogoutUri: writable.backchannelLogoutUri.default(null),
  audiences: writable.audiences.default([]),
  roles: writable.roles.default([]),
});
export type CreateClient = z.infer<typeof CreateClientBody>;

/** One entry of OAUTH_CLIENTS_FILE: a client with its id, and the environment variable holding its secret. */
export const DeclaredClientSchema = CreateClientBody.extend({
  id: clientIdSchema,
  clientSecretEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'Must be an environment variable name')
    .optional(),
});
export const ClientsFileSchema = z.array(DeclaredClientSchema).refine((list) => unique(list.map((c) => c.id)), {
  message: 'Declares one id twice',
});
export type DeclaredClient = z.infer<typeof DeclaredClientSchema>;

export const ClientParam = z.strictObject({ id: clientIdSchema });

export const ClientListQuery = z.strictObject({ limit: limitSchema, cursor: z.string().max(200).optional() });

export const ClientStatsQuery = z.strictObject({
  hours: z
    .string()
    .regex(/^\d{1,3}$/, 'Must be an integer from 1 to 168')
    .transform(Number)
    .pipe(z.number().int().min(1, 'Must be at least 1').max(168, 'Must be at most 168'))
    .default(24),
});

export const ClientStatsSchema = z.object({
  buckets: z.array(z.object({ start: z.iso.datetime(), signIns: z.number().int() })),
});
export type ClientStats = z.infer<typeof ClientStatsSchema>;
