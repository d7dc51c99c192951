// Per-client CORS for the provider's endpoints a browser app calls directly
// (/oauth2/token, /oauth2/userinfo, /oauth2/revoke, /oauth2/introspect): an
// answer carries CORS headers only for an Origin the client it concerns lists
// in allowedOrigins. A preflight names no client, so it is allowed when any
// client lists the origin (that set is read at most every few seconds); the
// actual request is then judged against its own client. /oauth2/authorize never.
import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import type { AppServices } from '../../deps.js';
import { oauthClients } from '../../db/schema.js';
import { requestHeader } from '../../lib/node-fast-path.js';
import type { OAuthClient } from '../../provider/clients.js';
import type { OAuthEnv } from './env.js';

export const CORS_PATHS = ['/token', '/userinfo', '/revoke', '/introspect'] as const;

export type CorsVariables = { corsOrigins: readonly string[] | undefined };
export type CorsEnv = OAuthEnv & { Variables: CorsVariables };

const ORIGINS_CACHE_MS = 5_000;

/** The endpoint says which client the request concerns: its origins may read the answer. */
export function allowCorsFor(c: Context, client: Pick<OAuthClient, 'allowedOrigins'>): void {
  c.set('corsOrigins', client.allowedOrigins);
}

const parseList = (text: string): string[] => {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
};

/** The preflights and the response headers of CORS_PATHS, to be routed before their endpoints. */
export function oauthCors(svc: AppServices) {
  let known: { at: number; origins: Promise<Set<string>> } | undefined;
  const anyClientAllows = async (origin: string): Promise<boolean> => {
    const now = svc.clock();
    if (!known || now - known.at > ORIGINS_CACHE_MS) {
      const origins = svc.database.db
        .select({ allowedOrigins: oauthClients.allowedOrigins })
        .from(oauthClients)
        .then((rows) => new Set(rows.flatMap((r) => parseList(r.allowedOrigins))));
      known = { at: now, origins };
      origins.catch(() => {
        if (known?.origins === origins) known = undefined;
      });
    }
    return (await known.origins).has(origin);
  };

  const preflight = async (c: Context<CorsEnv>, origin: string | undefined) => {
    const res = c.body(null, 204, { Vary: 'Origin', 'Cache-Control': 'no-store' });
    if (origin === undefined || !(await anyClientAllows(origin))) return res;
    res.headers.set('Access-Control-Allow-Origin', origin);
    res.headers.set('Access-Control-Allow-Methods', 'GET, POST');
    res.headers.set('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    res.headers.set('Access-Control-Max-Age', '600');
    return res;
  };

  // A middleware, not OPTIONS routes: a preflight is no operation of the API document.
  const cors: MiddlewareHandler<CorsEnv> = async (c, next) => {
    const origin = requestHeader(c, 'origin');
    if (c.req.method === 'OPTIONS' && requestHeader(c, 'access-control-request-method') !== undefined) return preflight(c, origin);
    await next();
    c.res.headers.append('Vary', 'Origin');
    if (origin !== undefined && c.get('corsOrigins')?.includes(origin)) {
      c.res.headers.set('Access-Control-Allow-Origin', origin);
      c.res.headers.set('Access-Control-Expose-Headers', 'WWW-Authenticate, X-Request-Id');
    }
  };

  const app = new Hono<CorsEnv>();
  for (const path of CORS_PATHS) app.use(path, cors);
  return app;
}
