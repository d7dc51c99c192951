// The layering of src/ as docs/architecture.md draws it, checked on every
// import (type-only and dynamic ones too): imports point down, a surface is
// not built from another surface, and the browser app reaches the server only
// through the typed client.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

/** Top-level parts of src/ by layer, lowest first. A part may import its own layer and the ones below. */
const LAYERS: readonly (readonly string[])[] = [
  ['lib'],
  ['config'],
  ['db', 'store'],
  ['security', 'events', 'audit', 'stats', 'adapters', 'access', 'middleware', 'deps'],
  ['signin'],
  ['modules', 'provider'],
  ['surfaces'],
  ['app'],
  ['boot', 'server', 'bun', 'deno'],
];
/** The browser app: it may import itself and the typed client (src/client.ts), nothing else of src/. */
const BROWSER = 'web-client';
const CLIENT = 'client';

type Edge = { from: string; to: string; typeOnly: boolean };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every relative import of src/ as a pair of paths relative to src/, without extension. */
function importsOf(root: string): Edge[] {
  return sourceFiles(root).flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    // `import type` / `export type` lines are erased: they close no circle at run time.
    const typeOnly = new Set([...text.matchAll(/^(?:import|export)\s+type\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]));
    return ts
      .preProcessFile(text, true, true)
      .importedFiles.map((f) => f.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => ({
        from: relative(root, file).replace(/\.tsx?$/, ''),
        to: relative(root, resolve(dirname(file), spec)).replace(/\.(js|jsx|ts|tsx)$/, ''),
        typeOnly: typeOnly.has(spec),
      }));
  });
}

const partOf = (path: string) => path.split('/')[0]!;
const layerOf = (part: string) => LAYERS.findIndex((l) => l.includes(part));

/** What is wrong with one import, or null when it is allowed. */
function violation(e: Edge): string | null {
  const from = partOf(e.from);
  const to = partOf(e.to);
  if (to.startsWith('..')) return `${e.from} imports ${e.to}, outside src/`;
  if (from === BROWSER) {
    return to === BROWSER || e.to === CLIENT ? null : `browser code ${e.from} imports server code ${e.to}`;
  }
  if (to === BROWSER) return `${e.from} imports the browser app (${e.to}); bundle it by path instead`;
  if (from === CLIENT) return e.to === 'app' ? null : `the typed client imports ${e.to}; it takes only the app's types`;
  if (from === 'surfaces' && to === 'surfaces') {
    const [, a] = e.from.split('/');
    const [, b] = e.to.split('/');
    return a === b ? null : `surface ${a} imports surface ${b} (${e.from} -> ${e.to})`;
  }
  const lf = layerOf(from);
  const lt = to === CLIENT ? Number.POSITIVE_INFINITY : layerOf(to);
  if (lf < 0) return `${e.from} is in src/${from}, which has no layer in this test`;
  if (lt < 0) return `${e.to} is in src/${to}, which has no layer in this test`;
  return lt > lf ? `${e.from} (${from}) imports a higher layer: ${e.to} (${to})` : null;
}

/** The folders docs/architecture.md's layout block names at its first level (`  name/   what it holds`). */
function documentedFolders(): { top: Set<string>; text: string } {
  const doc = readFileSync(resolve(SRC, '../docs/architecture.md'), 'utf8');
  // From `src/` to the next line that is not indented (the tree of test/, say, or the fence).
  const block = doc.match(/^src\/\n((?: .*\n|\n)*)/m)?.[1] ?? '';
  const top = new Set([...block.matchAll(/^ {2}([a-z-]+)\/(?:[a-z<>]+\/)?\s/gm)].map((m) => m[1]!));
  return { top, text: block };
}

describe('docs/architecture.md', () => {
  const folders = (dir: string) => readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory());

  it('draws src/ folder for folder: every folder, and no folder that is gone', () => {
    const { top } = documentedFolders();
    expect([...top].sort()).toEqual(folders(SRC).sort());
  });

  it('names every surface and every module', () => {
    const { text } = documentedFolders();
    for (const name of [...folders(join(SRC, 'surfaces')), ...folders(join(SRC, 'modules'))]) {
      expect(text, name).toMatch(new RegExp(`\\b${name}\\b`));
    }
  });
});

describe('the layers of src/', () => {
  const edges = importsOf(SRC);

  it('finds the imports it checks', () => {
    // A parser that found nothing would pass every rule below.
    expect(edges.length).toBeGreaterThan(300);
    expect(edges).toContainEqual({ from: 'app', to: 'surfaces/api/index', typeOnly: false });
  });

  it('has imports pointing down only, surfaces apart, and the browser app on the typed client', () => {
    expect(edges.map(violation).filter((v) => v !== null)).toEqual([]);
  });

  it('has no import circle that runs (type-only imports aside)', () => {
    const graph = new Map<string, string[]>();
    for (const e of edges) if (!e.typeOnly) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open') circles.push([...path.slice(path.indexOf(next)), next].join(' -> '));
        else if (!state.has(next)) visit(next, [...path, next]);
      }
      state.set(file, 'done');
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f, [f]);
    expect(circles).toEqual([]);
  });

  it('names each kind of wrong import', () => {
    const wrong = (from: string, to: string) => violation({ from, to, typeOnly: false });
    expect(wrong('store/redis', 'modules/posts/posts.service')).toMatch(/higher layer/);
    expect(wrong('lib/ip', 'db/connect')).toMatch(/higher layer/);
    expect(wrong('signin/password', 'modules/users/users.service')).toMatch(/higher layer/);
    expect(wrong('modules/users/users.routes', 'surfaces/api/index')).toMatch(/higher layer/);
    expect(wrong('surfaces/oauth/index', 'surfaces/api/index')).toMatch(/surface oauth imports surface api/);
    expect(wrong('web-client/pages/console', 'security/permissions')).toMatch(/browser code/);
    expect(wrong('web-client/api', 'client')).toBeNull();
    expect(wrong('surfaces/api/index', 'modules/users/users.routes')).toBeNull();
  });
});
