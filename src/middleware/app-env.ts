// The context variables, declared in this one place: each middleware imports
// the ones it sets or reads from here, never from another middleware, so their
// types form no import circle. The OAuth surface picks its shared ones from here too.
import type { AuditDetail } from '../lib/audit-details.js';
import type { AccessClaims } from '../security/access-tokens.js';
import type { Caller, StoreValues } from '../access/caller.js';
import type { Decision } from '../security/permissions.js';
import type { WindowCount } from '../store/store.js';

/** Set by request-id: the request's id (echoed, or minted). */
export type RequestIdVariables = { requestId: string };

/** Set by client-ip: the client's address, canonical spelling. */
export type ClientIpVariables = { clientIp: string };

/** Set by authentication (which reads clientIp). */
export type AuthVariables = {
  /** Who is calling; a route's declaration narrows it (a user permission: a UserCaller). */
  caller: Caller;
  claims: AccessClaims | null;
  rate: WindowCount | undefined;
  /** The values the route declared it reads from the store (`storeReads`), by name, read in the same round trip. */
  storeValues: StoreValues;
};

/** Set by the permission check behind every route declaration (read by the access log). */
export type RbacVariables = { decision: Decision | undefined };

/** Read by the access log: handlers set them for security events that end in success (e.g. role_assigned). */
export type AccessLogVariables = {
  auditDetail: AuditDetail | undefined;
  /** Whom an unauthenticated security event was about (a password reset names the account it reset). */
  auditActor: string | undefined;
};

/** The JSON API's: what every route module can read. */
export type AppEnv = {
  Variables: RequestIdVariables & ClientIpVariables & AuthVariables & RbacVariables & AccessLogVariables;
};
