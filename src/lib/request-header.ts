// One request header. On Node, read from the IncomingMessage's plain header
// object: hono's c.req.header() makes the adapter build a WHATWG Headers of
// every request header (each one run through undici's validators), which
// profiled at several percent of a GET. Elsewhere (Bun, Deno, app.request in
// tests) the Request's own headers. `name` must be lower case.
import type { Context } from 'hono';
import { nodeBindings } from './node-bindings.js';

export function requestHeader(c: Context, name: string): string | undefined {
  const headers = nodeBindings(c).incoming?.headers;
  if (!headers) return c.req.header(name);
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}
