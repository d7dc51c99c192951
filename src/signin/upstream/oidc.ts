// The `oidc` strategy: any OpenID Connect issuer with discovery (Google,
// Microsoft Entra ID, GitLab, Okta, Keycloak...), through openid-client, a
// certified relying-party library. It checks what the specs ask of the
// callback: state, `iss` (RFC 9207) when sent, the code exchange with PKCE,
// the ID token's signature against the issuer's JWKS, iss, aud, nonce, exp.
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import type { AppServices } from '../../deps.js';
import type { UpstreamProfile } from './profile.js';
import type { UpstreamProvider } from './providers.js';
import { ExternalSignInError, type UpstreamStrategy } from './strategy.js';

/** How long a provider's discovered configuration is reused (its JWKS is cached by openid-client with it). */
export const DISCOVERY_TTL_MS = 5 * 60_000;
const DEFAULT_SCOPES = ['openid', 'email', 'profile'];

const BAD_RESPONSE = 'The identity provider’s answer could not be verified: try again, or use another way to sign in';
const UNAVAILABLE = 'The identity provider could not be reached: try again in a moment';

/** The client authentication the provider's metadata allows: basic first (RFC 8414's default), then post; none without a secret. */
function clientAuthFor(provider: UpstreamProvider, supported: readonly string[] | undefined): oidc.ClientAuth {
  if (provider.clientSecret === null) return oidc.None();
  const methods = supported ?? ['client_secret_basic'];
  if (!methods.includes('client_secret_basic') && methods.includes('client_secret_post'))
    return oidc.ClientSecretPost(provider.clientSecret);
  return oidc.ClientSecretBasic(provider.clientSecret);
}

/** The strategy, with its discovery cache (one per app: no state outlives the app that made it). */
export function oidcStrategy(svc: Pick<AppServices, 'config' | 'clock' | 'logger'>): UpstreamStrategy {
  const cache = new Map<string, { config: oidc.Configuration; until: number }>();

  const insecureAllowed = (issuer: string) => !svc.config.production && issuer.startsWith('http://');

  async function configurationOf(provider: UpstreamProvider): Promise<oidc.Configuration> {
    const issuer = provider.issuer;
    if (issuer === null) throw new ExternalSignInError('upstream_unavailable', UNAVAILABLE, `provider ${provider.id} has no issuer`);
    // A new secret or client id is a new entry: the old one ages out.
    const secretHash = provider.clientSecret === null ? '-' : createHash('sha256').update(provider.clientSecret).digest('base64url');
    const key = [provider.id, issuer, provider.clientId, secretHash].join('\n');
    const now = svc.clock();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.config;
    let url: URL;
    try {
      url = new URL(issuer);
    } catch {
      throw new ExternalSignInError('upstream_unavailable', UNAVAILABLE, `provider ${provider.id}: the issuer is not a URL`);
    }
    const insecure = insecureAllowed(issuer);
    let discovered: oidc.Configuration;
    try {
      discovered = await oidc.discovery(
        url,
        provider.clientId,
        undefined,
        oidc.None(),
        insecure ? { execute: [oidc.allowInsecureRequests] } : {},
      );
    } catch (err) {
      throw new ExternalSignInError('upstream_unavailable', UNAVAILABLE, `discovery of ${issuer} failed: ${describe(err)}`);
    }
    const metadata = discovered.serverMetadata();
    const config = new oidc.Configuration(
      metadata,
      provider.clientId,
      provider.clientSecret === null ? {} : { client_secret: provider.clientSecret },
      clientAuthFor(provider, metadata.token_endpoint_auth_methods_supported),
    );
    if (insecure) oidc.allowInsecureRequests(config);
    // openid-client trusts the TLS channel for an ID token from the token endpoint (OpenID Connect Core
    // 3.1.3.7 allows it); the signature is checked against the issuer's JWKS anyway, as the contract says.
    oidc.enableNonRepudiationChecks(config);
    for (const [k, v] of cache) if (v.until <= now) cache.delete(k);
    cache.set(key, { config, until: now + DISCOVERY_TTL_MS });
    return config;
  }

  return {
    async authorizationUrl(provider, request) {
      const config = await configurationOf(provider);
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: request.redirectUri,
        response_type: 'code',
        scope: (provider.scopes.length > 0 ? provider.scopes : DEFAULT_SCOPES).join(' '),
        state: request.state,
        nonce: request.nonce,
        code_challenge: request.codeChallenge,
        code_challenge_method: 'S256',
      });
    },

    async finish(provider, callback) {
      const config = await configurationOf(provider);
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
      try {
        tokens = await oidc.authorizationCodeGrant(
          config,
          callback.url,
          {
            expectedState: callback.state,
            expectedNonce: callback.nonce,
            pkceCodeVerifier: callback.codeVerifier,
            idTokenExpected: true,
          },
          { redirect_uri: callback.redirectUri },
        );
      } catch (err) {
        throw failure(err);
      }
      const claims = tokens.claims();
      if (!claims) throw new ExternalSignInError('upstream_invalid_response', BAD_RESPONSE, 'no ID token');
      let source: Record<string, unknown> = claims;
      // Providers that keep the ID token small (Entra ID, Keycloak's options) give the email at userinfo.
      if (typeof claims.email !== 'string' && tokens.access_token && config.serverMetadata().userinfo_endpoint) {
        try {
          const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
          source = { ...info, ...claims };
        } catch (err) {
          svc.logger.warn({ provider: provider.id, err: describe(err) }, 'upstream userinfo failed; signing in without its claims');
        }
      }
      return profileOf(claims, source);
    },
  };
}

/** The profile from the ID token's claims (and userinfo's when the ID token has no email). */
function profileOf(idToken: oidc.IDToken, claims: Record<string, unknown>): UpstreamProfile {
  const tid = idToken.tid;
  const oid = idToken.oid;
  // Microsoft Entra ID: `sub` is pairwise per application; tid/oid names the user across them.
  const subject = typeof tid === 'string' && typeof oid === 'string' && tid && oid ? `${tid}/${oid}` : idToken.sub;
  const email = typeof claims.email === 'string' && claims.email.includes('@') ? claims.email.trim().toLowerCase() : null;
  const verified = claims.email_verified === true || claims.email_verified === 'true';
  const name = typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim().slice(0, 200) : null;
  return { subject, email, emailVerified: email !== null && verified, name };
}

const describe = (err: unknown): string => {
  if (!(err instanceof Error)) return 'unknown error';
  const code = (err as { code?: unknown }).code;
  return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`.slice(0, 300);
};

/** openid-client's error as a stable code: a refusal at the provider, an unreachable provider, or an answer that failed a check. */
function failure(err: unknown): ExternalSignInError {
  if (err instanceof ExternalSignInError) return err;
  if (err instanceof oidc.AuthorizationResponseError) {
    const code = /^[a-z_]{1,64}$/.test(err.error) ? err.error : 'access_denied';
    return new ExternalSignInError('access_denied', 'The sign-in was refused at the identity provider', code);
  }
  // The network failed, or the token endpoint answered an error (the code was refused, say).
  if (err instanceof TypeError || (err instanceof Error && err.name === 'TimeoutError')) {
    return new ExternalSignInError('upstream_unavailable', UNAVAILABLE, describe(err));
  }
  return new ExternalSignInError('upstream_invalid_response', BAD_RESPONSE, describe(err));
}
