// The context variables every route module can read: each middleware's own,
// declared where it sets them, put together.
import type { AccessLogVariables } from './access-log.js';
import type { AuthVariables } from './auth.js';
import type { ClientIpVariables } from './client-ip.js';
import type { RbacVariables } from './rbac.js';
import type { RequestIdVariables } from './request-id.js';

export type AppEnv = {
  Variables: RequestIdVariables & ClientIpVariables & AuthVariables & RbacVariables & AccessLogVariables;
};
