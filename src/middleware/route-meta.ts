// Per-route metadata: the audit action name and the permission a route needs.
// Attached to a no-op middleware in the route's chain, so the route table
// itself says what each route is, and the access log and the OpenAPI document
// read it back from the matched route.
import type { MiddlewareHandler } from 'hono';
import type { Permission } from '../security/permissions.js';

export const ROUTE_META = Symbol('routeMeta');

export type RouteMeta = {
  /** Audit action, e.g. `posts.delete`. */
  action: string;
  summary: string;
  /** The permission checked (for DELETE /posts/:id, the own-post one; `also` lists the rest). */
  permission?: Permission;
  also?: Permission[];
  /** OpenAPI tags. */
  tags: string[];
  description?: string;
};

export type MetaMiddleware = MiddlewareHandler & { [ROUTE_META]: RouteMeta };

export function routeMeta(meta: RouteMeta): MetaMiddleware {
  const mw: MiddlewareHandler = async (_c, next) => {
    await next();
  };
  return Object.assign(mw, { [ROUTE_META]: meta });
}

export function metaOf(handler: unknown): RouteMeta | undefined {
  return (handler as Partial<MetaMiddleware> | undefined)?.[ROUTE_META];
}
