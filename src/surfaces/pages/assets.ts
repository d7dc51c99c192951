// The pages' script and stylesheet: the browser app of src/web-client/,
// reached by path only (never imported). `npm run build` bundles it into
// dist/web-client/, and the production image serves those files; from source
// (`npm start`, tests) it is bundled once, in memory, on first use, with
// esbuild: no separate dev server, no CDN.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export type Asset = { type: string; body: Uint8Array<ArrayBuffer>; etag: string };

const TYPES: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };
export const ASSET_NAMES = Object.keys(TYPES);

const asset = (name: string, body: Uint8Array): Asset => ({
  type: TYPES[name]!,
  body: new Uint8Array(body),
  etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
});

/** The browser app beside this module's tree: src/web-client/ from source, dist/web-client/ once built. */
const WEB_CLIENT = new URL('../../web-client/', import.meta.url);

/** The registry of hosted pages, path → title: declared once, beside the views the browser app renders for them. */
export const PAGE_REGISTRY = new URL('pages.json', WEB_CLIENT);
const PageRegistry = z.record(z.string().regex(/^\/[a-z][a-z-]*$/), z.strictObject({ title: z.string().min(1) }));

/** The hosted pages, read (and checked) from the registry file, in its order. */
export function hostedPages(): Record<string, { title: string }> {
  if (!existsSync(PAGE_REGISTRY)) {
    // A dist/ compiled by tsc alone: the pages' files come from `npm run build`.
    throw new Error(`${fileURLToPath(PAGE_REGISTRY)} is missing: build the service with \`npm run build\`, not tsc alone`);
  }
  return PageRegistry.parse(JSON.parse(readFileSync(PAGE_REGISTRY, 'utf8')));
}

/** Bundle the client from its sources (esbuild: a dev dependency, present wherever the sources run). */
export async function bundleClient(opts: { minify?: boolean } = {}): Promise<Map<string, Uint8Array>> {
  const { build } = await import('esbuild');
  const entry = fileURLToPath(new URL('main.tsx', WEB_CLIENT));
  const out = await build({
    entryPoints: { app: entry },
    bundle: true,
    write: false,
    outdir: 'out',
    format: 'esm',
    platform: 'browser',
    target: ['chrome120', 'firefox120', 'safari17'],
    minify: opts.minify ?? true,
    legalComments: 'none',
    jsx: 'automatic',
    jsxImportSource: 'hono/jsx/dom',
    logLevel: 'silent',
  });
  const files = new Map<string, Uint8Array>();
  for (const f of out.outputFiles) files.set(f.path.slice(f.path.lastIndexOf('/') + 1), f.contents);
  return files;
}

let loading: Promise<Map<string, Asset>> | undefined;

/** The assets by name: the built files when there are any, else a bundle made now (once per process). */
export function webAssets(): Promise<Map<string, Asset>> {
  loading ??= (async () => {
    const built = (name: string) => new URL(name, WEB_CLIENT);
    const files = ASSET_NAMES.every((n) => existsSync(built(n)))
      ? new Map(ASSET_NAMES.map((n) => [n, new Uint8Array(readFileSync(built(n)))] as const))
      : await bundleClient();
    return new Map(ASSET_NAMES.map((n) => [n, asset(n, files.get(n) ?? new Uint8Array())]));
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}
