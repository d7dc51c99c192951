// The OAuth error vocabulary (RFC 6749 §4.1.2.1, §5.2, RFC 6750 §3.1, OpenID
// Connect Core §3.1.2.6): thrown by the provider, rendered by the OAuth surface
// (a JSON body) or by the authorization endpoint (a redirect to the client).
/**
 * RFC 6749's codes, plus `not_found` and `method_not_allowed` for paths and
 * methods no endpoint answers (the RFCs define no code for those).
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_token'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'account_selection_required'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'invalid_request_uri'
  | 'invalid_request_object'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'not_found'
  | 'method_not_allowed';

export class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    // Answers, not bugs: no stack (like Problem).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(description);
    Error.stackTraceLimit = limit;
    this.name = 'OAuthError';
  }
}

export function oauthError(error: OAuthErrorCode, description: string, status = 400, headers: Record<string, string> = {}): never {
  throw new OAuthError(error, description, status, headers);
}
