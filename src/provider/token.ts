// The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6; RFC 7636 §4.6): a code
// exchanged once for an authorization and its tokens, refresh tokens that
// rotate, and a service client's own token (client_credentials). A replayed code or a refresh token reused after its grace period
// revokes what it started: the transaction commits the revocation, then the
// request is refused.
import { createHash, randomUUID } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import type { AppServices } from '../deps.js';
import { oauthAuthorizations, oauthCodes, oauthRefreshTokens, sessions } from '../db/schema.js';
import { oauthError } from '../lib/oauth-error.js';
import { hashOpaqueToken, newOpaqueToken } from '../security/opaque-tokens.js';
import { storeKeys } from '../store/store.js';
import { preparedSql } from '../db/prepared.js';
import { rowsOf } from '../db/rows.js';
import { retrying } from '../db/tx.js';
import { createAuthorization, issueRefreshToken, liveSession, revokeAuthorizations } from './authorizations.js';
import { countClientSignIn, type OAuthClient } from './clients.js';
import { loadClaimsSubject, scopeList, signIdTokenFor } from './id-token.js';
import { signProviderAccessToken } from './jwt.js';

export type TokenResponse = {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  id_token?: string;
  refresh_token?: string;
};

/** The request's form parameters (the surface parsed them; a repeated one was refused). */
export type FormParamsLike = Readonly<Record<string, string | undefined>>;

const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

const invalidGrant = (description: string): never => oauthError('invalid_grant', description);

const required = (form: FormParamsLike, name: string): string =>
  form[name] ?? oauthError('invalid_request', `The parameter ${name} is required`);

/** Answers a token request for an authenticated client. */
export async function tokenRequest(svc: AppServices, client: OAuthClient, form: FormParamsLike): Promise<TokenResponse> {
  const grantType = required(form, 'grant_type');
  if (grantType !== 'authorization_code' && grantType !== 'refresh_token' && grantType !== 'client_credentials') {
    return oauthError('unsupported_grant_type', `The grant type ${grantType} is not supported`);
  }
  if (!client.grantTypes.includes(grantType)) {
    return oauthError('unauthorized_client', `This client may not use the ${grantType} grant`);
  }
  if (grantType === 'client_credentials') return clientCredentials(svc, client, form);
  return grantType === 'authorization_code' ? exchangeCode(svc, client, form) : refresh(svc, client, form);
}

/**
 * A change epoch (secret rotated, a token revoked) refuses the client's tokens
 * with iat * 1000 below it, and iat is whole seconds: a token asked for in the
 * epoch's own second waits for the next one (at most a second), so that a
 * client that just got a new secret never gets a token that is already dead.
 */
async function afterChangeEpoch(svc: AppServices, clientId: string): Promise<void> {
  const marker = Number(await svc.store.get(storeKeys.oauthClient(clientId)));
  if (!Number.isFinite(marker)) return;
  const next = Math.ceil(marker / 1000) * 1000;
  if (next - svc.clock() > 1000) return;
  // A timer may fire a millisecond early: wait until the clock says so.
  while (svc.clock() < next) await new Promise((resolve) => setTimeout(resolve, next - svc.clock() + 1));
}

/** Scopes that only mean something for a signed-in user: a service client acting for itself cannot ask for them. */
const USER_ONLY_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access']);

/**
 * RFC 6749 4.4: a confidential client acting for itself. Its access token
 * names the client (sub = client_id) and its roles at issue time; the API
 * judges it by the client's current roles. No refresh token, no ID token.
 */
async function clientCredentials(svc: AppServices, client: OAuthClient, form: FormParamsLike): Promise<TokenResponse> {
  if (client.type !== 'confidential') return oauthError('unauthorized_client', 'Only a confidential client may use client_credentials');
  const asked = form.scope === undefined ? [] : [...new Set(scopeList(form.scope))];
  const refused = asked.filter((s) => USER_ONLY_SCOPES.has(s) || !client.scopes.includes(s));
  if (refused.length > 0) return oauthError('invalid_scope', `This client may not ask for ${refused.join(' ')} with client_credentials`);
  const scope = asked.join(' ');
  await afterChangeEpoch(svc, client.id);
  const accessToken = await signProviderAccessToken(svc, {
    sub: client.id,
    client_id: client.id,
    scope,
    aud: client.audiences,
    roles: [...client.roles].sort(),
  });
  return { access_token: accessToken, token_type: 'Bearer', expires_in: svc.config.jwt.accessTtlSeconds, scope };
}

type Issued = {
  authorizationId: string;
  sessionId: string;
  userId: string;
  /** Space-separated: what this response's tokens carry. */
  scopes: string;
  authTime: number;
  amr: string[];
  nonce: string | null;
  refreshToken: string | null;
};

type Outcome = { ok: true; issued: Issued } | { ok: false; description: string };

async function exchangeCode(svc: AppServices, client: OAuthClient, form: FormParamsLike): Promise<TokenResponse> {
  const code = required(form, 'code');
  const redirectUri = required(form, 'redirect_uri');
  const verifier = form.code_verifier;
  if (verifier !== undefined && !VERIFIER.test(verifier)) {
    oauthError('invalid_request', 'code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~');
  }
  const codeHash = hashOpaqueToken(code);
  const challenge = verifier === undefined ? null : createHash('sha256').update(verifier).digest('base64url');
  const taken = await takeCode(svc, client, { codeHash, redirectUri, challenge });
  if (taken) {
    countClientSignIn(svc, client.id);
    return respond(svc, client, taken);
  }
  const outcome = await svc.tx(async (tx, emit): Promise<Outcome> => {
    const now = new Date(svc.clock());
    // Anything else (unknown, another client's, replayed, expired, a wrong
    // redirect URI or verifier, an ended sign-in) is judged on what is stored.
    const [row] = await tx.select().from(oauthCodes).where(eq(oauthCodes.codeHash, codeHash));
    if (!row || row.clientId !== client.id) return { ok: false, description: 'The code is unknown, or was issued to another client' };
    if (row.usedAt !== null) {
      // A replay: whoever holds the code may hold the tokens, so they go (RFC 6749 §4.1.2).
      if (row.authorizationId) await revokeAuthorizations(tx, emit, [row.authorizationId], now);
      return { ok: false, description: 'The code was already used' };
    }
    if (row.expiresAt.getTime() <= now.getTime()) return { ok: false, description: 'The code has expired' };
    if (row.redirectUri !== redirectUri) return { ok: false, description: 'redirect_uri differs from the authorization request' };
    if (row.codeChallenge !== null) {
      if (verifier === undefined) return { ok: false, description: 'code_verifier is required' };
      const computed = createHash('sha256').update(verifier).digest('base64url');
      if (computed !== row.codeChallenge) return { ok: false, description: 'code_verifier does not match the code_challenge' };
    } else if (verifier !== undefined) {
      return { ok: false, description: 'The authorization request had no code_challenge' };
    }
    const session = await liveSession(tx, row.sessionId, row.userId, now);
    if (!session) return { ok: false, description: 'The sign-in behind the code has ended' };
    const claimed = await tx
      .update(oauthCodes)
      .set({ usedAt: now })
      .where(and(eq(oauthCodes.codeHash, codeHash), isNull(oauthCodes.usedAt)))
      .returning({ codeHash: oauthCodes.codeHash });
    if (claimed.length === 0) return { ok: false, description: 'The code was already used' };
    const authorization = await createAuthorization(
      tx,
      { sessionId: row.sessionId, userId: row.userId, clientId: client.id, grantId: row.grantId, scopes: row.scopes },
      now,
    );
    await tx.update(oauthCodes).set({ authorizationId: authorization.id }).where(eq(oauthCodes.codeHash, codeHash));
    const offline = scopeList(row.scopes).includes('offline_access') && client.grantTypes.includes('refresh_token');
    const refreshToken = offline
      ? await issueRefreshToken(tx, authorization.id, {
          now,
          ttlSeconds: svc.config.jwt.refreshTtlSeconds,
          sessionExpiresAt: session.expiresAt,
        })
      : null;
    return {
      ok: true,
      issued: {
        authorizationId: authorization.id,
        sessionId: row.sessionId,
        userId: row.userId,
        scopes: row.scopes,
        authTime: Math.floor(session.createdAt.getTime() / 1000),
        amr: session.amr.split(',').filter(Boolean),
        nonce: row.nonce,
        refreshToken,
      },
    };
  });
  if (!outcome.ok) return invalidGrant(outcome.description);
  countClientSignIn(svc, client.id);
  return respond(svc, client, outcome.issued);
}

async function refresh(svc: AppServices, client: OAuthClient, form: FormParamsLike): Promise<TokenResponse> {
  const presented = required(form, 'refresh_token');
  const requested = form.scope === undefined ? null : scopeList(form.scope);
  const tokenHash = hashOpaqueToken(presented);
  const graceMs = svc.config.oauth.refreshGraceSeconds * 1000;
  const rotated = await rotateRefreshToken(svc, client, tokenHash, requested);
  if (rotated) return respond(svc, client, rotated);
  const outcome = await svc.tx(async (tx, emit): Promise<Outcome> => {
    const now = new Date(svc.clock());
    // Anything else (unknown, another client's, expired, revoked, a retry or a
    // reuse of a spent token, an ended session) is judged on what is stored.
    const [found] = await tx
      .select({ token: oauthRefreshTokens, authorization: oauthAuthorizations })
      .from(oauthRefreshTokens)
      .innerJoin(oauthAuthorizations, eq(oauthAuthorizations.id, oauthRefreshTokens.authorizationId))
      .where(eq(oauthRefreshTokens.tokenHash, tokenHash));
    if (!found || found.authorization.clientId !== client.id) {
      return { ok: false, description: 'The refresh token is unknown, or was issued to another client' };
    }
    const { token, authorization } = found;
    if (authorization.revokedAt !== null) return { ok: false, description: 'The authorization was revoked' };
    if (token.expiresAt.getTime() <= now.getTime()) return { ok: false, description: 'The refresh token has expired' };
    if (token.spentAt !== null) {
      if (now.getTime() - token.spentAt.getTime() > graceMs) {
        // Reused after its successor was issued: one of the two holders is not the client.
        await revokeAuthorizations(tx, emit, [authorization.id], now);
        return { ok: false, description: 'The refresh token was already used' };
      }
      // A retry within the grace period (the answer was lost): its successors
      // are spent, so only the pair answered now stays in use.
      await tx
        .update(oauthRefreshTokens)
        .set({ spentAt: now })
        .where(and(eq(oauthRefreshTokens.authorizationId, authorization.id), isNull(oauthRefreshTokens.spentAt)));
    } else {
      const spent = await tx
        .update(oauthRefreshTokens)
        .set({ spentAt: now })
        .where(and(eq(oauthRefreshTokens.tokenHash, tokenHash), isNull(oauthRefreshTokens.spentAt)))
        .returning({ tokenHash: oauthRefreshTokens.tokenHash });
      if (spent.length === 0) return { ok: false, description: 'The refresh token was already used' };
    }
    const granted = scopeList(authorization.scopes);
    if (requested !== null && !requested.every((s) => granted.includes(s))) {
      oauthError('invalid_scope', 'scope may narrow what was granted, never widen it');
    }
    const session = await liveSession(tx, authorization.sessionId, authorization.userId, now);
    if (!session) return { ok: false, description: 'The sign-in behind the refresh token has ended' };
    const refreshToken = await issueRefreshToken(tx, authorization.id, {
      now,
      ttlSeconds: svc.config.jwt.refreshTtlSeconds,
      sessionExpiresAt: session.expiresAt,
    });
    return {
      ok: true,
      issued: {
        authorizationId: authorization.id,
        sessionId: authorization.sessionId,
        userId: authorization.userId,
        scopes: requested === null ? authorization.scopes : granted.filter((s) => requested.includes(s)).join(' '),
        authTime: Math.floor(session.createdAt.getTime() / 1000),
        amr: session.amr.split(',').filter(Boolean),
        nonce: null,
        refreshToken,
      },
    };
  });
  if (!outcome.ok) return invalidGrant(outcome.description);
  return respond(svc, client, outcome.issued);
}

/*
 * The common code exchange in one statement, no transaction around it: take
 * the code if it is unused, unexpired, this client's, for this redirect URI
 * and verifier, and its sign-in is alive; name in it the authorization it
 * starts (what a replay revokes), insert that authorization and, for
 * offline_access to a client with the refresh grant, its first refresh token.
 * No row: the caller judges the request on what is stored.
 */
const takeCodeStatement = preparedSql(
  'oauth_take_code',
  sql`
    WITH c AS (
      UPDATE ${oauthCodes} c SET used_at = ${sql.placeholder('now')}::timestamptz, authorization_id = ${sql.placeholder('authorizationId')}::uuid
      FROM ${sessions} s
      WHERE c.code_hash = ${sql.placeholder('codeHash')}::text
        AND c.used_at IS NULL
        AND c.client_id = ${sql.placeholder('clientId')}::text
        AND c.expires_at > ${sql.placeholder('now')}::timestamptz
        AND c.redirect_uri = ${sql.placeholder('redirectUri')}::text
        AND c.code_challenge IS NOT DISTINCT FROM ${sql.placeholder('challenge')}::text
        AND s.id = c.session_id
        AND s.user_id = c.user_id
        AND s.revoked_at IS NULL
        AND s.expires_at > ${sql.placeholder('now')}::timestamptz
      RETURNING c.session_id, c.user_id, c.grant_id, c.scopes, c.nonce, s.created_at AS auth_at, s.expires_at AS session_expires_at, s.amr
    ), a AS (
      INSERT INTO ${oauthAuthorizations} (id, session_id, user_id, client_id, grant_id, scopes, created_at)
      SELECT ${sql.placeholder('authorizationId')}::uuid, c.session_id, c.user_id, ${sql.placeholder('clientId')}::text, c.grant_id, c.scopes,
        ${sql.placeholder('now')}::timestamptz
      FROM c
      RETURNING id
    ), t AS (
      INSERT INTO ${oauthRefreshTokens} (token_hash, authorization_id, created_at, expires_at)
      SELECT ${sql.placeholder('refreshHash')}::text, a.id, ${sql.placeholder('now')}::timestamptz,
        LEAST(${sql.placeholder('expiresAt')}::timestamptz, c.session_expires_at)
      FROM a, c
      WHERE ${sql.placeholder('refreshGrant')}::boolean AND 'offline_access' = ANY (string_to_array(c.scopes, ' '))
      RETURNING authorization_id
    )
    SELECT c.session_id, c.user_id, c.scopes, c.nonce, extract(epoch from c.auth_at)::float8 AS auth_time, c.amr,
      (SELECT count(*) FROM t)::int AS refreshed
    FROM c JOIN a ON true`,
);

type TakenRow = {
  session_id: string;
  user_id: string;
  scopes: string;
  nonce: string | null;
  auth_time: number | string;
  amr: string;
  refreshed: number | string;
};

async function takeCode(
  svc: AppServices,
  client: OAuthClient,
  code: { codeHash: string; redirectUri: string; challenge: string | null },
): Promise<Issued | null> {
  const now = svc.clock();
  const authorizationId = randomUUID();
  const refreshToken = newOpaqueToken();
  const result = await retrying(
    () =>
      takeCodeStatement(svc.database.db, {
        now: new Date(now).toISOString(),
        authorizationId,
        codeHash: code.codeHash,
        clientId: client.id,
        redirectUri: code.redirectUri,
        challenge: code.challenge,
        refreshHash: hashOpaqueToken(refreshToken),
        expiresAt: new Date(now + svc.config.jwt.refreshTtlSeconds * 1000).toISOString(),
        refreshGrant: client.grantTypes.includes('refresh_token'),
      }),
    { retries: svc.metrics.txRetries },
  );
  const [row] = rowsOf<TakenRow>(result);
  if (!row) return null;
  return {
    authorizationId,
    sessionId: row.session_id,
    userId: row.user_id,
    scopes: row.scopes,
    authTime: Math.floor(Number(row.auth_time)),
    amr: row.amr.split(',').filter(Boolean),
    nonce: row.nonce,
    refreshToken: Number(row.refreshed) > 0 ? refreshToken : null,
  };
}

/*
 * The common refresh in one statement, no transaction around it (a statement
 * is atomic): spend the presented token if it is unspent, unexpired, this
 * client's, its authorization unrevoked, its session alive and the requested
 * scopes granted, and insert its successor. Nothing is read before the write,
 * so concurrent chains of one session meet only on their own rows. No row:
 * the caller judges the request on what is stored (an error, a retry within
 * the grace period, a reuse).
 */
const rotateStatement = preparedSql(
  'oauth_rotate_refresh',
  sql`
    WITH r AS (
      UPDATE ${oauthRefreshTokens} t SET spent_at = ${sql.placeholder('now')}::timestamptz
      FROM ${oauthAuthorizations} a, ${sessions} s
      WHERE t.token_hash = ${sql.placeholder('tokenHash')}::text
        AND t.spent_at IS NULL
        AND t.expires_at > ${sql.placeholder('now')}::timestamptz
        AND a.id = t.authorization_id
        AND a.client_id = ${sql.placeholder('clientId')}::text
        AND a.revoked_at IS NULL
        AND s.id = a.session_id
        AND s.user_id = a.user_id
        AND s.revoked_at IS NULL
        AND s.expires_at > ${sql.placeholder('now')}::timestamptz
        AND string_to_array(a.scopes, ' ') @> string_to_array(${sql.placeholder('requested')}::text, ' ')
      RETURNING a.id, a.session_id, a.user_id, a.scopes, s.created_at AS auth_at, s.expires_at AS session_expires_at, s.amr
    ), n AS (
      INSERT INTO ${oauthRefreshTokens} (token_hash, authorization_id, created_at, expires_at)
      SELECT ${sql.placeholder('nextHash')}::text, r.id, ${sql.placeholder('now')}::timestamptz,
        LEAST(${sql.placeholder('expiresAt')}::timestamptz, r.session_expires_at)
      FROM r
      RETURNING authorization_id
    )
    SELECT r.id, r.session_id, r.user_id, r.scopes, extract(epoch from r.auth_at)::float8 AS auth_time, r.amr
    FROM r JOIN n ON n.authorization_id = r.id`,
);

type RotatedRow = { id: string; session_id: string; user_id: string; scopes: string; auth_time: number | string; amr: string };

async function rotateRefreshToken(
  svc: AppServices,
  client: OAuthClient,
  tokenHash: string,
  requested: string[] | null,
): Promise<Issued | null> {
  const now = svc.clock();
  const refreshToken = newOpaqueToken();
  const result = await retrying(
    () =>
      rotateStatement(svc.database.db, {
        now: new Date(now).toISOString(),
        tokenHash,
        clientId: client.id,
        requested: requested === null ? '' : requested.join(' '),
        nextHash: hashOpaqueToken(refreshToken),
        expiresAt: new Date(now + svc.config.jwt.refreshTtlSeconds * 1000).toISOString(),
      }),
    { retries: svc.metrics.txRetries },
  );
  const [row] = rowsOf<RotatedRow>(result);
  if (!row) return null;
  const granted = scopeList(row.scopes);
  return {
    authorizationId: row.id,
    sessionId: row.session_id,
    userId: row.user_id,
    scopes: requested === null ? row.scopes : granted.filter((s) => requested.includes(s)).join(' '),
    authTime: Math.floor(Number(row.auth_time)),
    amr: row.amr.split(',').filter(Boolean),
    nonce: null,
    refreshToken,
  };
}

async function respond(svc: AppServices, client: OAuthClient, issued: Issued): Promise<TokenResponse> {
  const user = await loadClaimsSubject(svc, issued.userId);
  if (!user) return invalidGrant('The account is gone');
  const ttl = svc.config.jwt.accessTtlSeconds;
  const iat = Math.floor(svc.clock() / 1000);
  const exp = iat + ttl;
  const scopes = scopeList(issued.scopes);
  const accessToken = await signProviderAccessToken(svc, {
    sub: issued.userId,
    client_id: client.id,
    scope: issued.scopes,
    sid: issued.sessionId,
    aud: client.audiences,
    amr: issued.amr,
    auth_time: issued.authTime,
  });
  const idToken = scopes.includes('openid')
    ? await signIdTokenFor(svc, {
        client,
        user,
        scopes,
        sessionId: issued.sessionId,
        authTime: issued.authTime,
        amr: issued.amr,
        nonce: issued.nonce,
        accessToken,
        iat,
        exp,
      })
    : undefined;
  return {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: ttl,
    scope: issued.scopes,
    ...(idToken !== undefined ? { id_token: idToken } : {}),
    ...(issued.refreshToken !== null ? { refresh_token: issued.refreshToken } : {}),
  };
}
