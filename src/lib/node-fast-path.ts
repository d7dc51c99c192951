// The Node fast path, all of it: the only place that touches @hono/node-server's
// IncomingMessage and ServerResponse, and the only place that calls hono's
// c.req.header() and c.header() (a conventions test holds everything else to it).
//
// Why: on Node, c.req.header() makes the adapter build a WHATWG Headers of every
// request header (each run through undici's validators), and every header set
// with c.header() costs one on the response too (profiled: several percent of
// a GET, see test/bench/README.md). So request headers are read from the
// IncomingMessage's plain object, and headers known before the handler runs
// (security headers, request id, rate limits, no-store) go straight onto the
// ServerResponse, which the adapter merges into whatever response the app
// returns (headers the response itself carries win).
//
// The parity rule: every function here behaves the same on Bun, Deno and under
// app.request() (tests), through the WHATWG Request and c.header(). One
// difference cannot be hidden: on Node a header set here never shows in c.res,
// only on the wire. So tests that read such a header must run over a real
// socket too (test/integration/security.test.ts, the "through the Node HTTP
// server" blocks), for every path that sets one.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';

/** What @hono/node-server passes as c.env; absent on Bun, Deno and app.request(). */
type NodeBindings = { incoming?: IncomingMessage; outgoing?: ServerResponse };

const nodeBindings = (c: Context): NodeBindings => (c.env as NodeBindings | undefined) ?? {};

/** One request header (`name` in lower case). */
export function requestHeader(c: Context, name: string): string | undefined {
  const headers = nodeBindings(c).incoming?.headers;
  if (!headers) return c.req.header(name);
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** A response header known before the handler answers; kept on error responses too. */
export function setResponseHeader(c: Context, name: string, value: string): void {
  const out = nodeBindings(c).outgoing;
  if (out && !out.headersSent) out.setHeader(name, value);
  else c.header(name, value);
}

export function setResponseHeaders(c: Context, headers: Readonly<Record<string, string>>): void {
  for (const name in headers) setResponseHeader(c, name, headers[name]!);
}

/** The peer address of the socket on Node (Bun and Deno entries pass their own reader). */
export const nodeRemoteAddress = (c: Context): string | undefined => nodeBindings(c).incoming?.socket?.remoteAddress;

/**
 * Whether the request carries a body. HTTP/1.1: without Content-Length or
 * Transfer-Encoding it has none (Node's adapter still hands over an empty
 * stream); elsewhere the Request's own `body` says.
 */
export function requestHasBody(c: Context): boolean {
  if (requestHeader(c, 'transfer-encoding')) return true;
  const length = requestHeader(c, 'content-length');
  if (length !== undefined) return Number(length) > 0;
  return nodeBindings(c).incoming ? false : c.req.raw.body !== null;
}
