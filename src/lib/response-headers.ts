// Response headers known before the handler runs (request id, rate limit,
// security headers). On Node they go straight onto the ServerResponse, which
// merges them into whatever response the app returns (headers the response
// itself carries take precedence). The app's responses then keep plain header
// objects, and the Node adapter writes them without building a WHATWG Headers
// (profiled: undici's header validation was several percent of a GET).
// Elsewhere (Bun, Deno, app.request in tests) through hono's c.header().
import type { Context } from 'hono';
import { nodeBindings } from './node-bindings.js';

export function setResponseHeader(c: Context, name: string, value: string): void {
  const out = nodeBindings(c).outgoing;
  if (out && !out.headersSent) out.setHeader(name, value);
  else c.header(name, value);
}

export function setResponseHeaders(c: Context, headers: Readonly<Record<string, string>>): void {
  for (const name in headers) setResponseHeader(c, name, headers[name]!);
}
