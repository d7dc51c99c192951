// Drizzle tables. Kept to what CockroachDB and PostgreSQL both accept: UUID keys
// from gen_random_uuid(), timestamptz with millisecond precision (so a cursor
// built from a JS Date compares exactly), no serial columns.
import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' });

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    email: text('email').notNull().unique('users_email_key'),
    name: text('name').notNull(),
    /** argon2id; null for a user who signed up through an identity provider and never set a password. */
    passwordHash: text('password_hash'),
    /** When the current email was proven (a verification link, a password reset); null: not yet. */
    emailVerifiedAt: ts('email_verified_at'),
    /** When TOTP was confirmed; null: off. With passkeyCount, what User.mfa shows without a join. */
    totpEnabledAt: ts('totp_enabled_at'),
    /** Kept in the transaction of every passkey insert and delete. */
    passkeyCount: integer('passkey_count').notNull().default(0),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    updatedAt: ts('updated_at').notNull().default(sql`now()`),
  },
  (t) => [index('users_created_idx').on(t.createdAt.desc(), t.id.desc())],
);

export const roles = pgTable('roles', {
  name: text('name').primaryKey(),
  description: text('description').notNull().default(''),
  builtIn: boolean('built_in').notNull().default(false),
  createdAt: ts('created_at').notNull().default(sql`now()`),
});

export const rolePermissions = pgTable(
  'role_permissions',
  {
    roleName: text('role_name')
      .notNull()
      .references(() => roles.name, { onDelete: 'cascade' }),
    permission: text('permission').notNull(),
  },
  (t) => [primaryKey({ columns: [t.roleName, t.permission] })],
);

export const userRoles = pgTable(
  'user_roles',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    roleName: text('role_name')
      .notNull()
      .references(() => roles.name, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.userId, t.roleName] }), index('user_roles_role_idx').on(t.roleName)],
);

export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    expiresAt: ts('expires_at').notNull(),
    revokedAt: ts('revoked_at'),
    revokedReason: text('revoked_reason'),
    /** Where and with what the session was started (shown in the user's session list). */
    ip: text('ip').notNull().default(''),
    userAgent: text('user_agent').notNull().default(''),
    lastRefreshedAt: ts('last_refreshed_at'),
    /** How the session's user proved who they are (RFC 8176 values, comma-separated): carried into every access token's `amr`. */
    amr: text('amr').notNull().default('pwd'),
    /**
     * SHA-256 (hex) of the secret half of the browser-session cookie, once the
     * hosted pages made this sign-in a browser session; null: tokens only.
     */
    browserKeyHash: text('browser_key_hash'),
  },
  (t) => [index('sessions_user_idx').on(t.userId)],
);

/**
 * A user's TOTP secret, sealed with MFA_ENCRYPTION_KEY (AES-256-GCM). Pending
 * until confirmed with a code; `last_used_step` is the newest time step that
 * was accepted, so each step works once (a conditional update claims it).
 */
export const totpFactors = pgTable('totp_factors', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  secretSealed: text('secret_sealed').notNull(),
  confirmedAt: ts('confirmed_at'),
  lastUsedStep: bigint('last_used_step', { mode: 'number' }),
  createdAt: ts('created_at').notNull().default(sql`now()`),
});

/** One-time recovery codes: only their SHA-256 is stored (each has 80 random bits). */
export const recoveryCodes = pgTable(
  'recovery_codes',
  {
    codeHash: text('code_hash').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    usedAt: ts('used_at'),
  },
  (t) => [index('recovery_codes_user_idx').on(t.userId)],
);

/** WebAuthn credentials. The public key is COSE, base64url; the counter is the authenticator's signature count. */
export const passkeys = pgTable(
  'passkeys',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    credentialId: text('credential_id').notNull().unique('passkeys_credential_key'),
    publicKey: text('public_key').notNull(),
    counter: bigint('counter', { mode: 'number' }).notNull().default(0),
    transports: text('transports').notNull().default(''),
    name: text('name').notNull(),
    backedUp: boolean('backed_up').notNull().default(false),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    lastUsedAt: ts('last_used_at'),
  },
  (t) => [index('passkeys_user_idx').on(t.userId)],
);

/**
 * Single-use tokens sent by mail (email verification, password reset). Only
 * the SHA-256 of a token is stored; `email` is the address it was sent to, so a
 * token stops working when the account's email changes.
 */
export const emailTokens = pgTable(
  'email_tokens',
  {
    tokenHash: text('token_hash').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    email: text('email').notNull(),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [index('email_tokens_user_kind_idx').on(t.userId, t.kind)],
);

/**
 * The transactional outbox: a mail is inserted in the transaction of the change
 * that causes it and sent afterwards by whichever instance claims it. A sent
 * (or abandoned) message keeps its row without its body, so a link never stays
 * in the table once it has gone out.
 */
export const mailOutbox = pgTable(
  'mail_outbox',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    kind: text('kind').notNull(),
    toAddress: text('to_address').notNull(),
    subject: text('subject').notNull(),
    textBody: text('text_body'),
    htmlBody: text('html_body'),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    /** Past this the message is no longer worth sending (its link has expired). */
    expiresAt: ts('expires_at').notNull(),
    nextAttemptAt: ts('next_attempt_at').notNull(),
    attempts: integer('attempts').notNull().default(0),
    claimedBy: text('claimed_by'),
    claimedUntil: ts('claimed_until'),
    sentAt: ts('sent_at'),
    failedAt: ts('failed_at'),
    lastError: text('last_error'),
  },
  (t) => [index('mail_outbox_due_idx').on(t.sentAt, t.failedAt, t.nextAttemptAt)],
);

/**
 * Domain events (src/events), written in the transaction of the change that
 * causes them. The writer publishes them right after its commit; a relay on
 * every instance publishes those still unrelayed (the writer could not reach
 * the store), claiming them with a lease. Times are the database's own.
 */
export const eventOutbox = pgTable(
  'event_outbox',
  {
    id: uuid('id').primaryKey(),
    type: text('type').notNull(),
    /** The event as JSON. */
    payload: text('payload').notNull(),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    claimedUntil: ts('claimed_until'),
    relayedAt: ts('relayed_at'),
  },
  // Serves the relay's claim (relayed_at IS NULL, oldest first) and the prune (relayed_at < …).
  (t) => [index('event_outbox_relay_idx').on(t.relayedAt, t.createdAt)],
);

export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    /** SHA-256 of the token, hex. The token itself is never stored. */
    tokenHash: text('token_hash').primaryKey(),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => sessions.id, { onDelete: 'cascade' }),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    expiresAt: ts('expires_at').notNull(),
    spentAt: ts('spent_at'),
  },
  (t) => [index('refresh_tokens_session_idx').on(t.sessionId)],
);

export const posts = pgTable(
  'posts',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    authorId: uuid('author_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    body: text('body').notNull(),
    createdAt: ts('created_at').notNull().default(sql`now()`),
  },
  // The author index serves a user's export pages and the cascade when a user is deleted.
  (t) => [
    index('posts_created_idx').on(t.createdAt.desc(), t.id.desc()),
    index('posts_author_idx').on(t.authorId, t.createdAt.desc(), t.id.desc()),
  ],
);

// The audit log takes one row per API request, so its write cost is the one
// that scales with traffic. The primary key leads with the time: every insert
// lands at the right-hand end of the index (a random-UUID key touched a random
// leaf page per row), and the newest-first pages read that same index
// backwards, so no separate time index is kept (the measurement:
// test/bench/README.md). The indexes are ascending; queries say plain `DESC` and scan them backwards
// (see src/db/keyset.ts). On CockroachDB a time-leading key puts the inserts on
// one range, as the time index it replaces already did; a deployment whose
// insert rate outgrows one range can make it hash-sharded there.
export const auditLogs = pgTable(
  'audit_logs',
  {
    id: uuid('id').notNull().default(sql`gen_random_uuid()`),
    at: ts('at').notNull(),
    requestId: text('request_id').notNull(),
    actorId: uuid('actor_id'),
    /** A service client's id when the actor is a client (client_credentials token); actor_id is then null. */
    actorClient: text('actor_client'),
    ip: text('ip').notNull(),
    method: text('method').notNull(),
    path: text('path').notNull(),
    route: text('route').notNull(),
    status: integer('status').notNull(),
    action: text('action').notNull(),
    detail: text('detail'),
  },
  (t) => [
    primaryKey({ name: 'audit_logs_pkey', columns: [t.at, t.id] }),
    index('audit_actor_time_idx').on(t.actorId, t.at, t.id),
    index('audit_action_time_idx').on(t.action, t.at, t.id),
    index('audit_status_time_idx').on(t.status, t.at, t.id),
  ],
);

/** Persistent counters for /admin/stats, incremented by batched upserts from every instance. */
export const statsCounters = pgTable('stats_counters', {
  name: text('name').primaryKey(),
  value: bigint('value', { mode: 'number' }).notNull().default(0),
  createdAt: ts('created_at').notNull().default(sql`now()`),
});

/**
 * The same kind of counters per hour (GET /admin/stats/timeline): `hour` is the
 * bucket's start, on the hour. Rows older than the longest timeline are pruned.
 */
export const statsHourly = pgTable(
  'stats_hourly',
  {
    hour: ts('hour').notNull(),
    name: text('name').notNull(),
    value: bigint('value', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ name: 'stats_hourly_pkey', columns: [t.hour, t.name] })],
);

/*
 * The OpenID provider (src/provider). List-valued fields are JSON arrays in
 * text columns: read and written whole, never queried inside.
 */

/** A registered OAuth client (relying party or service client). */
export const oauthClients = pgTable('oauth_clients', {
  /** The client_id. */
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** `confidential` or `public`. */
  type: text('type').notNull(),
  /** SHA-256 (hex) of the secret (256 random bits, so a fast hash is enough); null for a public client. */
  secretHash: text('secret_hash'),
  /** The secret before the last rotation, valid until previousSecretExpiresAt (OAUTH_SECRET_OVERLAP_SECONDS). */
  previousSecretHash: text('previous_secret_hash'),
  previousSecretExpiresAt: ts('previous_secret_expires_at'),
  /** When the secret last changed: client_credentials tokens issued before are dead. */
  secretChangedAt: ts('secret_changed_at'),
  redirectUris: text('redirect_uris').notNull().default('[]'),
  postLogoutRedirectUris: text('post_logout_redirect_uris').notNull().default('[]'),
  grantTypes: text('grant_types').notNull().default('["authorization_code","refresh_token"]'),
  scopes: text('scopes').notNull().default('["openid","profile","email","offline_access"]'),
  firstParty: boolean('first_party').notNull().default(false),
  allowedOrigins: text('allowed_origins').notNull().default('[]'),
  idTokenSignedResponseAlg: text('id_token_signed_response_alg').notNull().default('RS256'),
  backchannelLogoutUri: text('backchannel_logout_uri'),
  audiences: text('audiences').notNull().default('[]'),
  roles: text('roles').notNull().default('[]'),
  /** `api` or `file` (OAUTH_CLIENTS_FILE): who manages the row. */
  source: text('source').notNull().default('api'),
  createdAt: ts('created_at').notNull().default(sql`now()`),
  updatedAt: ts('updated_at').notNull().default(sql`now()`),
});

/** Consent: what a user allowed a client (space-separated scopes). One per user and client. */
export const oauthGrants = pgTable(
  'oauth_grants',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.id, { onDelete: 'cascade' }),
    scopes: text('scopes').notNull(),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    updatedAt: ts('updated_at').notNull().default(sql`now()`),
  },
  (t) => [uniqueIndex('oauth_grants_user_client_key').on(t.userId, t.clientId), index('oauth_grants_client_idx').on(t.clientId)],
);

/**
 * What one code exchange started: a client's tokens within one session (the
 * `sid`). Revoking it (code reuse, refresh reuse, grant revoked, client
 * deleted) kills its refresh tokens and, on the next request, its access
 * tokens. Ending the session ends it too.
 */
export const oauthAuthorizations = pgTable(
  'oauth_authorizations',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => sessions.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.id, { onDelete: 'cascade' }),
    grantId: uuid('grant_id'),
    scopes: text('scopes').notNull(),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    revokedAt: ts('revoked_at'),
  },
  (t) => [
    index('oauth_authorizations_session_idx').on(t.sessionId),
    index('oauth_authorizations_user_client_idx').on(t.userId, t.clientId),
    index('oauth_authorizations_client_idx').on(t.clientId),
  ],
);

/** A one-time authorization code, by its SHA-256; lives 60 s; a second use revokes what the first issued. */
export const oauthCodes = pgTable(
  'oauth_codes',
  {
    codeHash: text('code_hash').primaryKey(),
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => sessions.id, { onDelete: 'cascade' }),
    grantId: uuid('grant_id'),
    redirectUri: text('redirect_uri').notNull(),
    scopes: text('scopes').notNull(),
    nonce: text('nonce'),
    codeChallenge: text('code_challenge'),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    expiresAt: ts('expires_at').notNull(),
    usedAt: ts('used_at'),
    /** Set by the exchange: what a reuse revokes. */
    authorizationId: uuid('authorization_id'),
  },
  (t) => [index('oauth_codes_expiry_idx').on(t.expiresAt)],
);

/** Refresh tokens issued to clients, by SHA-256; rotated on use, within one authorization. */
export const oauthRefreshTokens = pgTable(
  'oauth_refresh_tokens',
  {
    tokenHash: text('token_hash').primaryKey(),
    authorizationId: uuid('authorization_id')
      .notNull()
      .references(() => oauthAuthorizations.id, { onDelete: 'cascade' }),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    expiresAt: ts('expires_at').notNull(),
    spentAt: ts('spent_at'),
  },
  (t) => [index('oauth_refresh_tokens_authorization_idx').on(t.authorizationId)],
);

/**
 * Back-channel logout deliveries (OpenID Connect Back-Channel Logout 1.0): one
 * per (ended session, client it signed into), queued in the transaction that
 * ended the session and sent by whichever instance claims it (a lease, like
 * mail_outbox). No foreign key to the session or user: an account deletion
 * removes them in the same transaction, and their logout still goes out.
 * The logout token is signed at send time, never stored.
 */
export const backchannelDeliveries = pgTable(
  'backchannel_deliveries',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.id, { onDelete: 'cascade' }),
    /** The logout token's `sid` and `sub`. */
    sessionId: uuid('session_id').notNull(),
    userId: uuid('user_id').notNull(),
    createdAt: ts('created_at').notNull().default(sql`now()`),
    /** Past this the delivery is given up. */
    expiresAt: ts('expires_at').notNull(),
    nextAttemptAt: ts('next_attempt_at').notNull(),
    attempts: integer('attempts').notNull().default(0),
    claimedBy: text('claimed_by'),
    claimedUntil: ts('claimed_until'),
    deliveredAt: ts('delivered_at'),
    failedAt: ts('failed_at'),
    lastError: text('last_error'),
  },
  (t) => [
    uniqueIndex('backchannel_deliveries_session_client_key').on(t.sessionId, t.clientId),
    index('backchannel_deliveries_due_idx').on(t.deliveredAt, t.failedAt, t.nextAttemptAt),
    index('backchannel_deliveries_client_idx').on(t.clientId),
  ],
);

/**
 * An upstream identity provider users can sign in with (type `oidc`: any
 * issuer through discovery; `github`: GitHub's OAuth 2.0 and user API). The
 * client secret is sealed with the data key (security/secret-box.ts), bound to
 * the provider's id.
 */
export const identityProviders = pgTable('identity_providers', {
  /** The slug in /auth/external/:provider. */
  id: text('id').primaryKey(),
  /** `oidc` or `github`. */
  type: text('type').notNull(),
  /** The button's label. */
  name: text('name').notNull(),
  /** oidc: the issuer (discovery at {issuer}/.well-known/openid-configuration). */
  issuer: text('issuer'),
  /** github: the web and API origins (GitHub Enterprise Server sets its own). */
  githubUrl: text('github_url'),
  githubApiUrl: text('github_api_url'),
  clientId: text('client_id').notNull(),
  clientSecretSealed: text('client_secret_sealed'),
  /** JSON array of the scopes asked for. */
  scopes: text('scopes').notNull().default('[]'),
  /** Whether the provider's email_verified is believed (automatic linking needs it). */
  trustEmailVerified: boolean('trust_email_verified').notNull().default(false),
  enabled: boolean('enabled').notNull().default(true),
  /** `api` or `file` (IDENTITY_PROVIDERS_FILE): who manages the row. */
  source: text('source').notNull().default('api'),
  createdAt: ts('created_at').notNull().default(sql`now()`),
  updatedAt: ts('updated_at').notNull().default(sql`now()`),
});

/**
 * A user's identity at an upstream provider, keyed by (provider, subject) and
 * never by email; `email` is what the provider last said, for display only.
 */
export const userIdentities = pgTable(
  'user_identities',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    providerId: text('provider_id')
      .notNull()
      .references(() => identityProviders.id, { onDelete: 'cascade' }),
    subject: text('subject').notNull(),
    email: text('email'),
    linkedAt: ts('linked_at').notNull().default(sql`now()`),
    lastUsedAt: ts('last_used_at'),
  },
  (t) => [uniqueIndex('user_identities_provider_subject_key').on(t.providerId, t.subject), index('user_identities_user_idx').on(t.userId)],
);
