// .env.example lists every variable the configuration reads, and parses as is.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

describe('.env.example', () => {
  it('names every variable that src/config.ts reads, and only those', () => {
    const example = new Set([...readFileSync('.env.example', 'utf8').matchAll(/^([A-Z_0-9]+)=/gm)].map((m) => m[1]));
    const source = readFileSync('src/config.ts', 'utf8');
    const schemaBlock = source.slice(source.indexOf('const envSchema'), source.indexOf('export type Config'));
    const read = new Set([...schemaBlock.matchAll(/^\s+([A-Z_0-9]+):/gm)].map((m) => m[1]));
    expect([...example].sort()).toEqual([...read].sort());
  });

  it('is a valid configuration as written', () => {
    const env = Object.fromEntries([...readFileSync('.env.example', 'utf8').matchAll(/^([A-Z_0-9]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(() => loadConfig(env)).not.toThrow();
  });
});
