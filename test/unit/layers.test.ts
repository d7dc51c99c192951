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
  ['signin', 'modules', 'provider'],
  ['surfaces'],
  ['app'],
  ['boot', 'server', 'bun', 'deno'],
];
/** The browser app: it may import itself and the typed client (src/client.ts), nothing else of src/. */
const BROWSER = 'web-client';
const CLIENT = 'client';

type Edge = { from: string; to: string };

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
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    return info.importedFiles
      .map((f) => f.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => ({
        from: relative(root, file).replace(/\.tsx?$/, ''),
        to: relative(root, resolve(dirname(file), spec)).replace(/\.(js|jsx|ts|tsx)$/, ''),
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

describe('the layers of src/', () => {
  const edges = importsOf(SRC);

  it('finds the imports it checks', () => {
    // A parser that found nothing would pass every rule below.
    expect(edges.length).toBeGreaterThan(300);
    expect(edges).toContainEqual({ from: 'app', to: 'surfaces/api/index' });
  });

  it('has imports pointing down only, surfaces apart, and the browser app on the typed client', () => {
    expect(edges.map(violation).filter((v) => v !== null)).toEqual([]);
  });

  it('names each kind of wrong import', () => {
    expect(violation({ from: 'store/redis', to: 'modules/posts/posts.service' })).toMatch(/higher layer/);
    expect(violation({ from: 'lib/ip', to: 'db/connect' })).toMatch(/higher layer/);
    expect(violation({ from: 'modules/users/users.routes', to: 'surfaces/api/index' })).toMatch(/higher layer/);
    expect(violation({ from: 'surfaces/oauth/index', to: 'surfaces/api/index' })).toMatch(/surface oauth imports surface api/);
    expect(violation({ from: 'web-client/pages/console', to: 'security/permissions' })).toMatch(/browser code/);
    expect(violation({ from: 'web-client/api', to: 'client' })).toBeNull();
    expect(violation({ from: 'surfaces/api/index', to: 'modules/users/users.routes' })).toBeNull();
  });
});
