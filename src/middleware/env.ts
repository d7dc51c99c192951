// The context variables every route module can read, composed from what each
// middleware declares.
import type { AccessLogVariables } from './access-log.js';
import type { AuthVariables } from './auth.js';
import type { RbacVariables } from './rbac.js';
import type { RequestIdVariables } from './request-id.js';

export type AppEnv = {
  Variables: RequestIdVariables & AuthVariables & RbacVariables & Omit<AccessLogVariables, 'caller'>;
};
