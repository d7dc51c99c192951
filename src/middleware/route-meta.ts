// Per-route metadata: the audit action, the permission, and the OpenAPI
// operation. Built as hono-openapi's describeRoute middleware (so the document
// is generated from the route table and the same zod schemas), tagged with our
// own metadata that the access log and the tests read back from the matched route.
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { describeRoute, resolver } from 'hono-openapi';
import type { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../lib/problem.js';
import { setResponseHeader } from '../lib/response-headers.js';
import { BUILT_IN_DEFAULTS, type Permission } from '../security/permissions.js';

export const ROUTE_META = Symbol('routeMeta');

export type RouteMeta = {
  /** Audit action, e.g. `posts.delete`. */
  action: string;
  summary: string;
  description?: string;
  /** OpenAPI tags. */
  tags: string[];
  /** The permission checked (for DELETE /posts/:id, the own-post one; `also` lists the rest). */
  permission?: Permission;
  also?: Permission[];
  /** Success responses: status -> body schema (null: no body). */
  responses: Partial<Record<200 | 201 | 204, z.ZodType | null>>;
  /** Does the route take a JSON body? (adds 400 invalid_json, 413, 415) */
  body?: boolean;
  /** Route-specific error codes beyond the ones every route can answer. */
  errors?: ErrorCode[];
  /**
   * Store keys the handler needs, read in the request's one store round trip
   * (see the auth middleware) and handed over as the `prefetched` variable.
   */
  prefetch?: readonly string[];
  /** The response carries personal data: `Cache-Control: no-store`, errors included. */
  personal?: boolean;
};

export type MetaMiddleware = MiddlewareHandler & { [ROUTE_META]: RouteMeta };

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };

function errorResponses(meta: RouteMeta) {
  const codes = new Set<ErrorCode>(['validation_failed', 'invalid_token', 'rate_limited', 'internal_error', 'service_unavailable']);
  if (meta.permission) ['unauthenticated', 'forbidden'].forEach((c) => codes.add(c as ErrorCode));
  if (meta.body) ['invalid_json', 'payload_too_large', 'unsupported_media_type'].forEach((c) => codes.add(c as ErrorCode));
  for (const c of meta.errors ?? []) codes.add(c);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const c of codes) byStatus.set(ERROR_CODES[c].status, [...(byStatus.get(ERROR_CODES[c].status) ?? []), c]);
  const out: Record<string, object> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `Problem: ${list.map((c) => `\`${c}\``).join(', ')}`,
      content: { 'application/problem+json': { schema: PROBLEM_REF } },
    };
  }
  return out;
}

export function routeMeta(meta: RouteMeta): MetaMiddleware {
  const guestByDefault = !meta.permission || BUILT_IN_DEFAULTS.guest.permissions.includes(meta.permission);
  const permissions = meta.permission ? [meta.permission, ...(meta.also ?? [])] : [];
  const success: Record<string, object> = {};
  for (const [status, schema] of Object.entries(meta.responses)) {
    success[status] = schema
      ? { description: meta.summary, content: { 'application/json': { schema: resolver(schema) } } }
      : { description: meta.summary };
  }
  const mw = describeRoute({
    operationId: meta.action,
    summary: meta.summary,
    description: [
      meta.description,
      permissions.length ? `Requires permission ${permissions.map((p) => `\`${p}\``).join(' or ')}.` : 'Requires no permission.',
    ]
      .filter(Boolean)
      .join('\n\n'),
    tags: meta.tags,
    // Guest-accessible routes take an optional token; a sent token is judged.
    security: guestByDefault ? [{}, { bearerAuth: [] }] : [{ bearerAuth: [] }],
    'x-permission': permissions,
    'x-audit-action': meta.action,
    responses: { ...success, ...errorResponses(meta) },
  } as Parameters<typeof describeRoute>[0]);
  if (!meta.personal) return Object.assign(mw, { [ROUTE_META]: meta });
  const noStore: MiddlewareHandler = async (c, next) => {
    setResponseHeader(c, 'Cache-Control', 'no-store');
    await next();
  };
  // describeRoute's own marker (a symbol property) is copied, so the document still finds it.
  return Object.assign(noStore, mw, { [ROUTE_META]: meta });
}

export function metaOf(handler: unknown): RouteMeta | undefined {
  return (handler as Partial<MetaMiddleware> | undefined)?.[ROUTE_META];
}

export type MatchedRoute = { meta: RouteMeta; path: string };
const matched = new WeakMap<Context, MatchedRoute | null>();

/**
 * The route that answers this request (or would have, had a middleware not
 * refused first): the first matched route with metadata, so /users/me before
 * /users/:id. Null when no route matches. Looked up once per request.
 */
export function matchedRoute(c: Context): MatchedRoute | null {
  let m = matched.get(c);
  if (m === undefined) {
    m = null;
    for (const r of matchedRoutes(c)) {
      const meta = metaOf(r.handler);
      if (meta) {
        m = { meta, path: r.path };
        break;
      }
    }
    matched.set(c, m);
  }
  return m;
}
