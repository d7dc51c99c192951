// The context variables of the OAuth surface, each declared where it is set.
import type { AccessLogVariables } from '../../middleware/access-log.js';
import type { ClientIpVariables } from '../../middleware/client-ip.js';
import type { RequestIdVariables } from '../../middleware/request-id.js';
import type { ClientCredentialsVariables } from './client-credentials.js';
import type { FormBodyVariables } from './form-body.js';

export type OAuthEnv = {
  Variables: RequestIdVariables & ClientIpVariables & AccessLogVariables & FormBodyVariables & ClientCredentialsVariables;
};
