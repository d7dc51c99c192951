// docs/api.md keeps up with the code: every operation of the OpenAPI document,
// every error code, permission and configuration variable is on the page, and
// the docs link only to files inside the repository.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/lib/problem.js';
import { ALL_PERMISSIONS } from '../../src/security/permissions.js';
import { useTestApp } from '../helpers/use-app.js';

const DOC = 'docs/api.md';
const DOCS = ['docs/api.md', 'docs/architecture.md'];

/** The names src/config.ts reads: the keys of its envSchema (as test/unit/env-example.test.ts finds them). */
function configVariables(): string[] {
  const source = readFileSync('src/config.ts', 'utf8');
  const schemaBlock = source.slice(source.indexOf('const envSchema'), source.indexOf('export type Config'));
  return [...new Set([...schemaBlock.matchAll(/^\s+([A-Z_0-9]+):/gm)].map((m) => m[1]!))];
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

  it('names every environment variable that src/config.ts reads', () => {
    const read = configVariables();
    expect(read.length).toBeGreaterThan(30);
    expect(read.filter((v) => !text.includes(quoted(v)))).toEqual([]);
  });

  it('links only to files inside the repository, and names only files that exist', () => {
    const root = process.cwd();
    const broken: string[] = [];
    for (const file of DOCS) {
      const body = readFileSync(file, 'utf8');
      const links = [...body.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^(https?:|mailto:|#)/i.test(t));
      // Repository paths written as code, e.g. `src/db/tx.ts` (patterns such as `src/modules/*/` are skipped).
      const named = [...body.matchAll(/`((?:src|test|docs|drizzle|certs)\/[^`\s]*)`/g)].map((m) => m[1]!).filter((t) => !/[*{}<>]/.test(t));
      for (const target of links) {
        const path = resolve(dirname(join(root, file)), target.split('#')[0]!);
        if (relative(root, path).startsWith('..') || !existsSync(path)) broken.push(`${file}: (${target})`);
      }
      for (const target of named) if (!existsSync(join(root, target))) broken.push(`${file}: \`${target}\``);
    }
    expect(broken, 'links outside the repository, or names of files that do not exist').toEqual([]);
  });
});
