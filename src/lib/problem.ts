// RFC 9457 problem details: thrown anywhere with problem(), rendered by onError.
import type { AuditDetail } from './audit-details.js';

export const ERROR_CODES = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  invalid_json: { status: 400, title: 'The body is not valid JSON' },
  unsupported_media_type: { status: 415, title: 'The body must be application/json' },
  payload_too_large: { status: 413, title: 'The body is too large' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  unauthenticated: { status: 401, title: 'Authentication is required' },
  invalid_token: { status: 401, title: 'The access token is not valid' },
  forbidden: { status: 403, title: 'Not allowed' },
  invalid_credentials: { status: 401, title: 'Invalid email or password' },
  current_password_required: { status: 403, title: 'The current password is required' },
  email_taken: { status: 409, title: 'The email is already registered' },
  refresh_token_reused: { status: 401, title: 'The refresh token was already used' },
  invalid_refresh_token: { status: 401, title: 'The refresh token is not valid' },
  unknown_role: { status: 400, title: 'Unknown role' },
  unknown_permission: { status: 400, title: 'Unknown permission' },
  role_exists: { status: 409, title: 'The role already exists' },
  role_locked: { status: 409, title: 'The role cannot be changed' },
  last_admin: { status: 409, title: 'The last admin cannot lose the admin role' },
  rate_limited: { status: 429, title: 'Too many requests' },
  service_unavailable: { status: 503, title: 'A dependency is unavailable' },
  internal_error: { status: 500, title: 'Internal error' },
  invalid_email_token: { status: 400, title: 'The link is not valid' },
  email_not_verified: { status: 403, title: 'The email address is not verified' },
  mfa_required: { status: 401, title: 'A second factor is required' },
  invalid_mfa_token: { status: 401, title: 'The MFA token is not valid' },
  invalid_mfa_code: { status: 401, title: 'The code is not valid' },
  mfa_already_enabled: { status: 409, title: 'TOTP is already on' },
  mfa_not_enabled: { status: 409, title: 'TOTP is not on' },
  mfa_enrollment_required: { status: 403, title: 'Set up a second factor first' },
  mfa_code_required: { status: 403, title: 'A second-factor code is required' },
  invalid_passkey: { status: 400, title: 'The passkey response is not valid' },
  passkey_not_found: { status: 404, title: 'No such passkey' },
  client_not_found: { status: 404, title: 'No such OAuth client' },
  invalid_redirect_uri: { status: 400, title: 'A redirect URI is not acceptable' },
  reauthentication_required: { status: 403, title: 'Sign in again to confirm it is you' },
  last_sign_in_method: { status: 409, title: 'This is the last way to sign in to the account' },
  identity_not_linked: { status: 403, title: 'This identity is not linked to an account' },
  identity_in_use: { status: 409, title: 'This identity is linked to another account' },
  idp_not_found: { status: 404, title: 'No such identity provider' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export type FieldError = { path: string; message: string };

export class Problem extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    readonly extra: {
      errors?: FieldError[];
      headers?: Record<string, string>;
      status?: number;
      /** Audit-log detail for the security event this failure is (e.g. login_failed). */
      audit?: AuditDetail;
      /** Whom the event is about, when the request is not signed in (the account whose password was right at mfa_required). */
      actor?: string;
      /** Extension members of the problem body (RFC 9457 §3.2), e.g. mfa_required's mfaToken and methods. */
      members?: Record<string, unknown>;
    } = {},
  ) {
    // Problems are answers, not bugs: skip the stack capture, which made every
    // 401/403/404 cost more than the request itself (profiled).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(detail ?? ERROR_CODES[code].title);
    Error.stackTraceLimit = limit;
    this.name = 'Problem';
    this.status = extra.status ?? ERROR_CODES[code].status;
  }
}

/** Throw a problem: the one way handlers, services and middleware fail a request. */
export function problem(code: ErrorCode, detail?: string, extra?: Problem['extra']): never {
  throw new Problem(code, detail, extra);
}

export type ProblemBody = {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  requestId: string;
  errors?: FieldError[];
  [member: string]: unknown;
};

export function problemBody(p: Problem, requestId: string): ProblemBody {
  const body: ProblemBody = {
    type: `urn:auth-system:problem:${p.code}`,
    title: ERROR_CODES[p.code].title,
    status: p.status,
    detail: p.detail ?? ERROR_CODES[p.code].title,
    code: p.code,
    requestId,
  };
  if (p.extra.errors) body.errors = p.extra.errors;
  // Extension members never overwrite the standard ones.
  for (const [k, v] of Object.entries(p.extra.members ?? {})) if (!(k in body)) body[k] = v;
  return body;
}
