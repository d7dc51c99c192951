// The catalogue of audit-log details: every security event the service writes
// into an entry's `detail`, in the contract's one scheme, a snake_case name and
// for some an argument after ": " (`permission_denied: posts:delete:any`).
// `c.set('auditDetail', …)` and `problem(…, { audit: … })` take only these, so a
// new event is added here (and to the table in docs/api.md) or not at all.
// It lives in lib/, beside the error codes, because problem() (lib) names it.

/**
 * Each detail's argument: `undefined` for a detail written bare, a type for
 * the text after ": ", both for a detail written either way.
 */
type Catalogue = {
  // Signing in, and the failure limits.
  login_failed: undefined;
  login_locked: undefined;
  current_password_failed: undefined;
  current_password_locked: undefined;
  /** A user without a password whose sign-in was too old for a sensitive change. */
  reauthentication_required: undefined;
  email_not_verified: undefined;
  password_queue_full: undefined;
  // Second factors.
  mfa_required: undefined;
  mfa_verified: 'totp' | 'recovery_code' | 'passkey';
  mfa_failed: undefined;
  mfa_locked: undefined;
  mfa_code_required: undefined;
  mfa_enrollment_required: undefined;
  mfa_totp_pending: undefined;
  mfa_enabled: 'totp';
  mfa_disabled: 'totp';
  mfa_recovery_codes_replaced: undefined;
  mfa_reset: undefined;
  passkey_added: undefined;
  passkey_removed: undefined;
  passkey_login: undefined;
  passkey_invalid: undefined;
  /** Signed in (or linked) through an upstream identity provider: the provider's id. */
  external_login: string;
  /** An external sign-in refused: the stable code of its page. */
  external_login_failed: string;
  /** An upstream identity linked to the account: the provider's id. */
  identity_linked: string;
  /** External identities: the provider's id. */
  identity_unlinked: string;
  // The account: profile, mailed links, sessions, deletion.
  password_changed: undefined;
  email_changed: undefined;
  email_verified: undefined;
  email_verification_requested: undefined;
  password_reset_requested: undefined;
  password_reset: undefined;
  email_token_invalid: undefined;
  session_revoked: undefined;
  /** How many sessions ended. */
  other_sessions_revoked: number;
  all_sessions_revoked: number;
  user_deleted: undefined | 'self';
  user_exported: undefined;
  // Tokens, permissions and roles.
  refresh_token_reused: undefined;
  invalid_token: undefined;
  invalid_token_flood: undefined;
  rate_limited: undefined;
  /** The permission (or `admin`, the role) refused. */
  permission_denied: string;
  escalation_refused: string;
  /** The user's new roles, comma-separated. */
  role_assigned: string;
  /** The role's name. */
  role_created: string;
  role_permissions_changed: string;
  role_deleted: string;
  /** OAuth client administration: the client's id. */
  client_created: string;
  client_updated: string;
  client_secret_rotated: string;
  client_deleted: string;
  /** Identity provider administration: the provider's id. */
  idp_created: string;
  idp_updated: string;
  idp_deleted: string;
  // First-run setup.
  setup_token_rejected: undefined;
  setup_admin_created: undefined;
};

export type AuditDetailName = keyof Catalogue;

/** One detail as written: the bare name, or `name: argument`, as the catalogue allows. */
export type AuditDetail = {
  [K in AuditDetailName]: (undefined extends Catalogue[K] ? K : never) | `${K}: ${Exclude<Catalogue[K], undefined>}`;
}[AuditDetailName];

type Form<A> = undefined extends A ? ([Exclude<A, undefined>] extends [never] ? 'bare' : 'either') : 'argument';

/** The catalogue at run time: how each detail is written (checked against the type both ways). */
export const AUDIT_DETAILS = {
  login_failed: 'bare',
  login_locked: 'bare',
  current_password_failed: 'bare',
  current_password_locked: 'bare',
  reauthentication_required: 'bare',
  email_not_verified: 'bare',
  password_queue_full: 'bare',
  mfa_required: 'bare',
  mfa_verified: 'argument',
  mfa_failed: 'bare',
  mfa_locked: 'bare',
  mfa_code_required: 'bare',
  mfa_enrollment_required: 'bare',
  mfa_totp_pending: 'bare',
  mfa_enabled: 'argument',
  mfa_disabled: 'argument',
  mfa_recovery_codes_replaced: 'bare',
  mfa_reset: 'bare',
  passkey_added: 'bare',
  passkey_removed: 'bare',
  passkey_login: 'bare',
  passkey_invalid: 'bare',
  external_login: 'argument',
  external_login_failed: 'argument',
  identity_linked: 'argument',
  identity_unlinked: 'argument',
  password_changed: 'bare',
  email_changed: 'bare',
  email_verified: 'bare',
  email_verification_requested: 'bare',
  password_reset_requested: 'bare',
  password_reset: 'bare',
  email_token_invalid: 'bare',
  session_revoked: 'bare',
  other_sessions_revoked: 'argument',
  all_sessions_revoked: 'argument',
  user_deleted: 'either',
  user_exported: 'bare',
  refresh_token_reused: 'bare',
  invalid_token: 'bare',
  invalid_token_flood: 'bare',
  rate_limited: 'bare',
  permission_denied: 'argument',
  escalation_refused: 'argument',
  role_assigned: 'argument',
  role_created: 'argument',
  role_permissions_changed: 'argument',
  role_deleted: 'argument',
  client_created: 'argument',
  client_updated: 'argument',
  client_secret_rotated: 'argument',
  client_deleted: 'argument',
  idp_created: 'argument',
  idp_updated: 'argument',
  idp_deleted: 'argument',
  setup_token_rejected: 'bare',
  setup_admin_created: 'bare',
} as const satisfies { [K in AuditDetailName]: Form<Catalogue[K]> };

/** Whether a written detail is one of the catalogue's, in its form (for tests and readers of the log). */
export function isAuditDetail(s: string): s is AuditDetail {
  const at = s.indexOf(': ');
  const name = at === -1 ? s : s.slice(0, at);
  if (!Object.hasOwn(AUDIT_DETAILS, name)) return false;
  const form = AUDIT_DETAILS[name as AuditDetailName];
  if (at === -1) return form !== 'argument';
  return form !== 'bare' && at + 2 < s.length;
}
