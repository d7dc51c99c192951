// One upstream provider type (oidc.ts, github.ts): how its authorization URL
// is made and how its callback becomes an UpstreamProfile. Everything else of
// the flow (state, nonce and PKCE kept server-side, single use; the linking
// rules; the browser session) is the same for every type.
import type { UpstreamProfile } from './profile.js';
import type { UpstreamProvider } from './providers.js';

export type UpstreamStrategy = {
  /** The URL the browser is sent to at the provider. */
  authorizationUrl(
    provider: UpstreamProvider,
    request: { redirectUri: string; state: string; nonce: string; codeChallenge: string },
  ): Promise<URL>;
  /**
   * The callback's URL (with `code`, `state`, `iss`...) checked as the specs
   * ask and traded for the user's profile. Throws ExternalSignInError.
   */
  finish(
    provider: UpstreamProvider,
    callback: { url: URL; redirectUri: string; state: string; nonce: string; codeVerifier: string },
  ): Promise<UpstreamProfile>;
};

/**
 * The stable codes of the hosted error pages of an external sign-in (shown
 * beside the words): the contract's identity_not_linked, identity_in_use,
 * idp_not_found, reauthentication_required, and the flow's own.
 */
export type ExternalErrorCode =
  | 'idp_not_found'
  | 'identity_not_linked'
  | 'identity_in_use'
  | 'reauthentication_required'
  | 'unauthenticated'
  | 'email_not_verified'
  | 'registration_closed'
  /** The state is unknown, used, expired, or the callback came to another browser. */
  | 'invalid_state'
  /** The user (or the provider) refused at the provider: its `error` parameter. */
  | 'access_denied'
  /** The provider's answer failed a check (iss, ID token signature, aud, nonce, exp...) or the code exchange failed. */
  | 'upstream_invalid_response'
  /** The provider could not be reached or answered an error. */
  | 'upstream_unavailable';

export class ExternalSignInError extends Error {
  constructor(
    readonly code: ExternalErrorCode,
    /** Words for the user (no secret, no upstream body). */
    readonly description: string,
    /** For the log only. */
    readonly detail?: string,
  ) {
    super(description);
  }
}
