// The 405 table: which methods a known path allows (for `Allow`), built once
// from the app's own route table, matched the way the router matches (strict).
import type { Hono } from 'hono';

/** Turns Hono's route table into "which methods does this path allow?" for 405s. */
// biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env and routes
export function methodIndex(app: Hono<any, any, any>): (path: string) => string[] {
  let table: { re: RegExp; method: string }[] | undefined;
  return (path) => {
    table ??= app.routes
      .filter((r) => r.method !== 'ALL')
      .map((r) => ({
        method: r.method,
        re: new RegExp(
          '^' +
            r.path
              .split('/')
              .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
              .join('/') +
            '$',
        ),
      }));
    const methods = new Set(table.filter((t) => t.re.test(path)).map((t) => t.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}
