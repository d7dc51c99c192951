// The one declaration per route: its permission (enforced here), audit action,
// store reads, documented errors with their real statuses, and the OpenAPI
// operation. Built around hono-openapi's describeRoute (so the document is
// generated from the route table and the same zod schemas), tagged with our
// own metadata that the access log and the tests read back from the matched route.
// The declaration also types the handler: behind a user permission, its caller
// is a signed-in user (CallerOf).
import type { Context, Env, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { RouterRoute } from 'hono/types';
import { findTargetHandler } from 'hono/utils/handler';
import { describeRoute, resolver } from 'hono-openapi';
import type { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../lib/problem.js';
import { setResponseHeader } from '../lib/node-fast-path.js';
import type { Caller, StoreRead, UserCaller } from '../access/caller.js';
import { BUILT_IN_DEFAULTS, type Permission, type UserPermission } from '../security/permissions.js';
import type { AuthVariables, RbacVariables } from './app-env.js';
import { checkPermission } from './rbac.js';

export const ROUTE_META = Symbol('routeMeta');

export type RouteMeta = {
  /** Audit action, e.g. `posts.delete`. */
  action: string;
  summary: string;
  description?: string;
  /** OpenAPI tags. */
  tags: string[];
  /** The permission the route needs, enforced by the declaration (for DELETE /posts/:id, the own-post one; `also` lists the rest). */
  permission?: Permission;
  also?: Permission[];
  /**
   * Where what is checked before the handler differs from `permission`: the
   * permission checked up front (DELETE /posts/:id checks `posts:read`, then
   * its handler decides between own and any), or null when the handler judges
   * someone other than the caller (POST /auth/refresh: the refresh token's user).
   */
  guard?: Permission | null;
  /** Success responses: status -> body schema (null: no body). */
  responses: Partial<Record<200 | 201 | 202 | 204, z.ZodType | null>>;
  /**
   * Does the route take a JSON body, or (DELETE) check one if sent? Documents
   * 400 invalid_json, 413 and 415, which the body middleware answers.
   */
  body?: boolean;
  /**
   * Route-specific errors beyond the ones every route can answer, each under
   * the status the route really answers it with (a code's usual one unless given).
   */
  errors?: (ErrorCode | { code: ErrorCode; status: number })[];
  /**
   * Store values the handler needs, read in the request's one store round trip
   * (see the auth middleware) and handed over by name as `storeValues`.
   */
  storeReads?: readonly StoreRead[];
  /** The response carries personal data: `Cache-Control: no-store`, errors included. */
  personal?: boolean;
  /**
   * Open to a user who must still set up a second factor (MFA_REQUIRED_ROLES):
   * GET /users/me, the factor routes and logout. Every other route answers
   * them 403 mfa_enrollment_required.
   */
  beforeMfa?: boolean;
};

/** The permission checked before the handler: `guard` when given, else `permission` (undefined: none). */
type GuardOf<M extends RouteMeta> = M extends { guard: infer G } ? G : M extends { permission: infer P } ? P : undefined;

/**
 * Who reaches the handler of a route so declared. Behind a user permission
 * (one the guest role can never hold), a signed-in user: checkPermission
 * refuses every other kind. Anything else (no permission, a guest one, a
 * guard of null) may be any caller.
 */
export type CallerOf<M extends RouteMeta> = [GuardOf<M>] extends [UserPermission] ? UserCaller : Caller;

/** What the declaration guarantees to the handlers after it (Hono intersects it with the app's Env). */
export type DeclaredEnv<M extends RouteMeta> = { Variables: { caller: CallerOf<M> } };

// biome-ignore lint/suspicious/noExplicitAny: like Hono's own MiddlewareHandler, any Env unless given
export type MetaMiddleware<E extends Env = any> = MiddlewareHandler<E> & { [ROUTE_META]: RouteMeta };

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };

/** Every problem the route can answer: code -> status (what the OpenAPI document lists). */
function problemsOf(meta: RouteMeta): Map<ErrorCode, number> {
  const out = new Map<ErrorCode, number>();
  const add = (code: ErrorCode, status: number = ERROR_CODES[code].status) => out.set(code, status);
  for (const c of ['validation_failed', 'invalid_token', 'rate_limited', 'internal_error', 'service_unavailable'] as const) add(c);
  // A route that judges someone other than the caller (guard: null) lists its own.
  if (meta.permission && meta.guard !== null) for (const c of ['unauthenticated', 'forbidden'] as const) add(c);
  if (meta.body) for (const c of ['invalid_json', 'payload_too_large', 'unsupported_media_type'] as const) add(c);
  // A signed-in holder of an MFA_REQUIRED_ROLES role without a second factor (src/surfaces/api/mfa-policy.ts).
  if (meta.beforeMfa !== true) add('mfa_enrollment_required');
  for (const e of meta.errors ?? []) {
    if (typeof e === 'string') add(e);
    else add(e.code, e.status);
  }
  return out;
}

function errorResponses(meta: RouteMeta) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [c, status] of problemsOf(meta)) byStatus.set(status, [...(byStatus.get(status) ?? []), c]);
  const out: Record<string, object> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `Problem: ${list.map((c) => `\`${c}\``).join(', ')}`,
      content: { 'application/problem+json': { schema: PROBLEM_REF } },
    };
  }
  return out;
}

export function declareRoute<M extends RouteMeta>(meta: M): MetaMiddleware<DeclaredEnv<M>> {
  if (meta.guard !== undefined && !meta.permission) throw new Error(`${meta.action}: a guard needs the permission it stands for`);
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
  const guard = meta.guard === undefined ? meta.permission : meta.guard;
  const personal = meta.personal === true;
  const enforce: MiddlewareHandler<{ Variables: RbacVariables & Pick<AuthVariables, 'caller'> }> = async (c, next) => {
    if (personal) setResponseHeader(c, 'Cache-Control', 'no-store');
    if (guard) checkPermission(c, guard);
    await next();
  };
  // describeRoute's own marker (a symbol property) is copied, so the document still finds it.
  // The narrower caller type is what checkPermission just made true.
  return Object.assign(enforce, mw, { [ROUTE_META]: meta }) as unknown as MetaMiddleware<DeclaredEnv<M>>;
}

/** The declaration on a handler, also through the wrapper route() puts around a sub-app's handlers when it has its own onError. */
export function metaOf(handler: unknown): RouteMeta | undefined {
  if (typeof handler !== 'function') return undefined;
  return (findTargetHandler(handler as MiddlewareHandler) as Partial<MetaMiddleware>)[ROUTE_META];
}

export type MatchedRoute = { meta: RouteMeta; path: string };

/**
 * The declarations of a surface's routes by method and path, indexed once when
 * the surface is built (it is mounted at '/', so its paths are the app's). A
 * request's route is the first route, not middleware, that Hono matched for
 * it: the one that answers it, or would have had a middleware not refused
 * first (so /users/me, not /users/:id). Its declaration is looked up by that
 * route's method and path.
 */
export class RouteIndex {
  readonly #byRoute = new Map<string, MatchedRoute>();
  readonly #matched = new WeakMap<Context, MatchedRoute | null>();

  /** Index the finished surface's routes. */
  index(routes: readonly RouterRoute[]): void {
    for (const r of routes) {
      const meta = r.method === 'ALL' ? undefined : metaOf(r.handler);
      if (meta === undefined) continue;
      const key = `${r.method} ${r.path}`;
      // The second would never answer: a mistake, caught at start.
      const first = this.#byRoute.get(key);
      if (first) throw new Error(`${key} is declared twice: ${first.meta.action}, ${meta.action}`);
      this.#byRoute.set(key, { meta, path: r.path });
    }
  }

  /** The request's route and its declaration (null: no declared route matches). Looked up once per request. */
  of(c: Context): MatchedRoute | null {
    let m = this.#matched.get(c);
    if (m === undefined) {
      const r = matchedRoutes(c).find((x) => x.method !== 'ALL');
      m = (r && this.#byRoute.get(`${r.method} ${r.path}`)) ?? null;
      this.#matched.set(c, m);
    }
    return m;
  }
}
