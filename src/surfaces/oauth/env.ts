// The context variables of the OAuth surface: the shared ones from
// middleware/app-env.ts, its own declared where they are set.
import type { AccessLogVariables, ClientIpVariables, RequestIdVariables } from '../../middleware/app-env.js';
import type { ClientCredentialsVariables } from './client-credentials.js';
import type { FormBodyVariables } from './form-body.js';

export type OAuthEnv = {
  Variables: RequestIdVariables & ClientIpVariables & AccessLogVariables & FormBodyVariables & ClientCredentialsVariables;
};
