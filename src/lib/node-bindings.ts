// What @hono/node-server passes as c.env: the request's IncomingMessage and the
// ServerResponse. Absent on Bun, Deno and app.request() (tests), where callers
// fall back to the WHATWG Request / hono's own response headers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';

export type NodeBindings = { incoming?: IncomingMessage; outgoing?: ServerResponse };

export const nodeBindings = (c: Context): NodeBindings => (c.env as NodeBindings | undefined) ?? {};
