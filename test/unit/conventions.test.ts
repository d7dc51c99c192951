// Source conventions that a review would otherwise have to catch.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

describe('source conventions', () => {
  it('reads request headers and sets early response headers only through the Node fast path', () => {
    const offenders = sources('src')
      .filter((f) => f !== join('src', 'lib', 'node-fast-path.ts'))
      .flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .map((line, i) => ({ f, i: i + 1, line }))
          .filter(({ line }) => /\bc\.req\.header\(|\bc\.header\(/.test(line) && !line.trim().startsWith('//')),
      )
      .map(({ f, i, line }) => `${f}:${i}: ${line.trim()}`);
    expect(offenders, 'use requestHeader()/setResponseHeader() from src/lib/node-fast-path.ts, or headers on the response').toEqual([]);
  });
});
