// The sign-in core (src/signin/) sits below the features: the API's routes,
// and later the pages and the OpenID provider, build on it, so it must not
// import any of them back.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [join(dir, e.name)] : [],
  );

/** The project files a source file imports (relative specifiers, type-only imports included). */
const importsOf = (file: string): string[] =>
  [...readFileSync(file, 'utf8').matchAll(/^import\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => relative('.', resolve(dirname(file), m[1]!)));

const LOWER = ['src/signin/', 'src/db/', 'src/lib/', 'src/security/', 'src/store/', 'src/events/', 'src/adapters/', 'src/deps'];

describe('the sign-in core', () => {
  it('imports nothing above it: no feature module, surface, middleware or page', () => {
    const offenders = sources('src/signin').flatMap((f) =>
      importsOf(f)
        .filter((target) => !LOWER.some((prefix) => target.startsWith(prefix)))
        .map((target) => `${f} imports ${target}`),
    );
    expect(offenders).toEqual([]);
  });

  it('leaves no import circle among the feature modules and the core', () => {
    const files = [...sources('src/modules'), ...sources('src/signin')];
    // Imports that run: a type-only import is erased and closes no circle at run time.
    const runtimeImports = (file: string) =>
      [...readFileSync(file, 'utf8').matchAll(/^import\s+(?!type\b)[^;]*?from\s+'(\.[^']+)'/gms)]
        .map((m) => relative('.', resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'))))
        .filter((target) => files.includes(target));
    const graph = new Map(files.map((f) => [f, runtimeImports(f)]));
    const circles: string[] = [];
    const walk = (file: string, path: string[]) => {
      for (const next of graph.get(file) ?? []) {
        if (next === path[0]) circles.push([...path, next].join(' -> '));
        else if (!path.includes(next) && next > path[0]!) walk(next, [...path, next]);
      }
    };
    for (const f of files) walk(f, [f]);
    expect(circles).toEqual([]);
  });
});
