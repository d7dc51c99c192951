// Which client a request to an OAuth endpoint says it is, and how it proves it
// (RFC 6749 §2.3.1): `Authorization: Basic` (client_secret_basic), client_id and
// client_secret in the form (client_secret_post), or client_id alone (a public
// client: none). Only read here: checking them against the registered clients
// is the endpoint's. Other schemes (a Bearer token at userinfo) are left alone.
import { createMiddleware } from 'hono/factory';
import { requestHeader } from '../../lib/node-fast-path.js';
import { isBrowserEndpoint, oauthError } from './errors.js';
import type { FormBodyVariables } from './form-body.js';

import type { ClientCredentials } from '../../provider/clients.js';

export type { ClientCredentials };

export type ClientCredentialsVariables = { clientCredentials: ClientCredentials | null };

const BASIC = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i;

const invalidClient = (description: string): never =>
  oauthError('invalid_client', description, 401, { 'WWW-Authenticate': 'Basic realm="oauth2"' });

/** The id and secret of a Basic header: each form-urlencoded, then joined by a colon and base64-encoded (RFC 6749 §2.3.1). */
export function parseBasic(header: string): { clientId: string; clientSecret: string } {
  const encoded = BASIC.exec(header)?.[1];
  if (encoded === undefined) return invalidClient('The Basic credentials are malformed');
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return invalidClient('The Basic credentials are malformed');
  const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  try {
    return { clientId: formDecode(decoded.slice(0, colon)), clientSecret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return invalidClient('The Basic credentials are malformed');
  }
}

/** Reads c.var.form, so it runs after the form body parser. */
export const clientCredentials = () =>
  createMiddleware<{ Variables: ClientCredentialsVariables & FormBodyVariables }>((c, next) => {
    const form = c.get('form');
    let credentials: ClientCredentials | null = null;
    // A browser's own Authorization header (a proxy's Basic login) is not a client's.
    const header = isBrowserEndpoint(c.req.path) ? undefined : requestHeader(c, 'authorization');
    if (header !== undefined && /^basic /i.test(header)) {
      const basic = parseBasic(header);
      if (form.client_secret !== undefined) oauthError('invalid_request', 'Use one client authentication method, not two');
      if (form.client_id !== undefined && form.client_id !== basic.clientId) {
        oauthError('invalid_request', 'client_id differs from the client of the Authorization header');
      }
      credentials = { method: 'client_secret_basic', ...basic };
    } else if (form.client_id !== undefined) {
      credentials =
        form.client_secret === undefined
          ? { method: 'none', clientId: form.client_id }
          : { method: 'client_secret_post', clientId: form.client_id, clientSecret: form.client_secret };
    }
    c.set('clientCredentials', credentials);
    return next();
  });
