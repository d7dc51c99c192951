// What the OpenAPI document promises a route answers: for a request (method and
// path), the operation the app would route it to, and its problem responses.
import type { Hono } from 'hono';
import { metaOf } from '../../src/middleware/route-meta.js';

type Op = { responses: Record<string, { description?: string }> };

/** The first route with a declaration that matches, as the app's own matcher picks it (/users/me before /users/:id). */
export function documentedProblems(app: Hono<any, any, any>, doc: { paths: Record<string, Record<string, Op>> }) {
  const routes = app.routes
    .filter((r) => r.method !== 'ALL' && metaOf(r.handler))
    .map((r) => ({
      method: r.method,
      path: r.path,
      re: new RegExp(
        `^${r.path
          .replace(/\/$/, '')
          .split('/')
          .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('/')}$`,
      ),
    }));
  const toOpenApiPath = (p: string) => (p.replace(/\/$/, '') || '/').replace(/:([A-Za-z_]+)/g, '{$1}');
  return (method: string, path: string): { route: string; documents: (status: number, code: string) => boolean } | undefined => {
    // As the app sees it: dot segments resolved by the URL parser.
    const bare = new URL(path, 'http://localhost').pathname;
    const r = routes.find((x) => x.method === method && x.re.test(bare));
    if (!r) return undefined;
    const op = doc.paths[toOpenApiPath(r.path)]?.[method.toLowerCase()];
    return {
      route: `${method} ${r.path}`,
      documents: (status, code) => (op?.responses[String(status)]?.description ?? '').includes(`\`${code}\``),
    };
  };
}
