// The docs keep up with the code: every operation of the OpenAPI document,
// every error code and permission is in docs/api.md, every configuration
// variable has its row in docs/configuration.md, and the docs link only to
// files (and headings) inside the repository.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/lib/problem.js';
import { ALL_PERMISSIONS } from '../../src/security/permissions.js';
import { useTestApp } from '../helpers/use-app.js';

const DOC = 'docs/api.md';
const CONFIGURATION = 'docs/configuration.md';
const DOCS = [
  'README.md',
  'CONTRIBUTING.md',
  'SECURITY.md',
  'docs/api.md',
  'docs/architecture.md',
  'docs/configuration.md',
  'docs/consistency.md',
  'docs/deployment.md',
  'docs/identity-providers.md',
  'test/bench/README.md',
];

/** The names src/config.ts reads: the keys of its envSchema (as test/unit/env-example.test.ts finds them). */
function configVariables(): string[] {
  const source = readFileSync('src/config.ts', 'utf8');
  const schemaBlock = source.slice(source.indexOf('const envSchema'), source.indexOf('export type Config'));
  return [...new Set([...schemaBlock.matchAll(/^\s+([A-Z_0-9]+):/gm)].map((m) => m[1]!))];
}

/** The anchors GitHub gives a Markdown file's headings (fenced code skipped; a repeated heading gets -1, -2…). */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : line.match(/^#{1,6}\s+(.*)$/);
    if (!heading) continue;
    const slug = heading[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Written as `code`, not merely as a substring of some other word. */
const quoted = (name: string) => `\`${name}\``;

describe('docs/api.md', () => {
  const app = useTestApp('pglite');
  const text = readFileSync(DOC, 'utf8');
  let operations: string[] = [];

  beforeAll(async () => {
    const res = await app.t.request('/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
    operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path.replace(/\{([A-Za-z_]+)\}/g, ':$1')}`),
    );
  });

  it('names every operation of the OpenAPI document as METHOD /path', () => {
    expect(operations.length).toBeGreaterThan(20);
    // `GET /users` must appear on its own, not only as the start of `GET /users/me`.
    const missing = operations.filter((op) => {
      const escaped = op.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return !new RegExp(`${escaped}(?![\\w/:.{}-])`).test(text);
    });
    expect(missing, `${DOC} does not document these operations`).toEqual([]);
  });

  it('lists every error code with its status', () => {
    const rows = new Map([...text.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
    const wrong = Object.entries(ERROR_CODES)
      .filter(([code, { status }]) => rows.get(code) !== status)
      .map(([code, { status }]) => `${code} (${status})`);
    expect(wrong, `${DOC} "Error codes" lacks these rows, or gives another status`).toEqual([]);
  });

  it('names every permission of the catalogue', () => {
    expect(ALL_PERMISSIONS.filter((p) => !text.includes(quoted(p)))).toEqual([]);
  });

  it('has one configuration table, in docs/configuration.md, with a row for every variable src/config.ts reads', () => {
    const read = configVariables();
    expect(read.length).toBeGreaterThan(30);
    const rows = new Set([...readFileSync(CONFIGURATION, 'utf8').matchAll(/^\| `([A-Z_0-9]+)` \|/gm)].map((m) => m[1]!));
    expect(
      read.filter((v) => !rows.has(v)),
      `${CONFIGURATION} lacks rows for these`,
    ).toEqual([]);
    // The README and the API reference point to it instead of keeping tables of their own.
    for (const file of ['README.md', DOC]) expect(readFileSync(file, 'utf8')).not.toMatch(/^\| `[A-Z_0-9]+` \|/m);
  });

  it('links only to files and headings inside the repository, and names only files that exist', () => {
    const root = process.cwd();
    const broken: string[] = [];
    for (const file of DOCS) {
      const body = readFileSync(file, 'utf8');
      const links = [...body.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^(https?:|mailto:)/i.test(t));
      // Repository paths written as code, e.g. `src/db/tx.ts` (patterns such as `src/modules/*/` are skipped,
      // and so is `certs/out`, which `npm run certs` makes and git ignores).
      const named = [...body.matchAll(/`((?:src|test|docs|drizzle|certs)\/[^`\s]*)`/g)]
        .map((m) => m[1]!)
        .filter((t) => !/[*{}<>]/.test(t) && !/^certs\/out(\/|$)/.test(t));
      for (const target of links) {
        const [targetPath, anchor] = target.split('#') as [string, string | undefined];
        const path = resolve(dirname(join(root, file)), targetPath || file.split('/').pop()!);
        if (relative(root, path).startsWith('..') || !existsSync(path)) broken.push(`${file}: (${target})`);
        else if (anchor !== undefined && path.endsWith('.md') && !anchorsOf(readFileSync(path, 'utf8')).has(anchor)) {
          broken.push(`${file}: (${target}) names no heading`);
        }
      }
      for (const target of named) if (!existsSync(join(root, target))) broken.push(`${file}: \`${target}\``);
    }
    expect(broken, 'links outside the repository, or names of files that do not exist').toEqual([]);
  });
});
