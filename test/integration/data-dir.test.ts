// DATA_DIR is private to the service's user (pen-test finding 5): the embedded
// database's files (its WAL holds password hashes) and the generated key.
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareDataDir } from '../../src/lib/data-dir.js';
import { freePort, ServerProcess } from '../helpers/processes.js';

const json = (body: unknown, token?: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify(body),
});
const fastHashing = { ARGON2_MEMORY_KIB: '1024', ARGON2_TIME_COST: '1' };

/** Everything under `root` (root included) that is not a 0700 directory or a 0600 regular file. */
function loosePaths(root: string): string[] {
  const out: string[] = [];
  const visit = (path: string) => {
    const st = lstatSync(path);
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      if (mode !== 0o700) out.push(`${mode.toString(8).padStart(4, '0')} ${path}/`);
      for (const name of readdirSync(path)) visit(join(path, name));
    } else if (st.isFile() && mode !== 0o600) out.push(`${mode.toString(8).padStart(4, '0')} ${path}`);
  };
  visit(root);
  return out;
}

/** The assertion message: how many of each mode, then the first paths. */
function report(loose: string[]): string {
  const byMode = new Map<string, number>();
  for (const line of loose) {
    const key = `${line.endsWith('/') ? 'directories' : 'files'} ${line.slice(0, 4)}`;
    byMode.set(key, (byMode.get(key) ?? 0) + 1);
  }
  const summary = [...byMode].map(([k, n]) => `${n} ${k}`).join(', ');
  return `${loose.length} not private (${summary}):\n${loose.slice(0, 40).join('\n')}${loose.length > 40 ? '\n...' : ''}`;
}

const count = (root: string, pick: (path: string) => boolean): number =>
  readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((p) => pick(join(root, p))).length;

describe('DATA_DIR modes', () => {
  it('keeps every directory 0700 and every file 0600 after the embedded service has written data and stopped', async () => {
    // A path that does not exist yet: the service creates it.
    const dataDir = join(mkdtempSync(join(tmpdir(), 'auth-datadir-')), 'data');
    const server = new ServerProcess(await freePort(), { DATA_DIR: dataDir, ...fastHashing });
    await server.start(60_000);
    try {
      const email = `modes-${Date.now()}@example.test`;
      const password = 'private-passphrase-5';
      expect((await fetch(`${server.url}/auth/register`, json({ email, password, name: 'Modes' }))).status).toBe(201);
      const login = await fetch(`${server.url}/auth/login`, json({ email, password }));
      expect(login.status).toBe(200);
      const tokens = (await login.json()) as { accessToken: string; refreshToken: string };
      expect((await fetch(`${server.url}/users/me`, { headers: { authorization: `Bearer ${tokens.accessToken}` } })).status).toBe(200);
      expect((await fetch(`${server.url}/posts`, json({ title: 'Modes', body: 'Written to the WAL.' }, tokens.accessToken))).status).toBe(
        201,
      );
      expect((await fetch(`${server.url}/auth/refresh`, json({ refreshToken: tokens.refreshToken }))).status).toBe(200);
      expect((await fetch(`${server.url}/auth/login`, json({ email, password: 'not-the-passphrase' }))).status).toBe(401);
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
    // What is checked is really there: the key, PGlite's cluster and its WAL.
    expect(statSync(join(dataDir, 'jwt-private.pem')).isFile()).toBe(true);
    expect(count(join(dataDir, 'pglite', 'pg_wal'), (p) => /\/[0-9A-F]{24}$/.test(p))).toBeGreaterThan(0);
    expect(count(dataDir, (p) => lstatSync(p).isFile())).toBeGreaterThan(100);
    const loose = loosePaths(dataDir);
    expect(loose, report(loose)).toEqual([]);
  });

  it('tightens at start what an older version left (0755 directories, 0666 and 0644 files), without following symlinks', async () => {
    const root = mkdtempSync(join(tmpdir(), 'auth-datadir-old-'));
    const dataDir = join(root, 'data');
    mkdirSync(join(dataDir, 'sub'), { recursive: true });
    writeFileSync(join(dataDir, 'left-over'), 'older version');
    writeFileSync(join(dataDir, 'sub', 'inner'), 'older version');
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'left-over'), 0o666);
    chmodSync(join(dataDir, 'sub'), 0o755);
    chmodSync(join(dataDir, 'sub', 'inner'), 0o644);
    // A symlink out of DATA_DIR: its target is not the service's to change.
    const outside = join(root, 'outside');
    writeFileSync(outside, 'not ours');
    chmodSync(outside, 0o644);
    symlinkSync(outside, join(dataDir, 'link'));
    expect(loosePaths(dataDir)).toHaveLength(4);

    const server = new ServerProcess(await freePort(), { DATA_DIR: dataDir, ...fastHashing });
    await server.start(60_000);
    try {
      // Already at start, before a single request.
      const loose = loosePaths(dataDir);
      expect(loose, report(loose)).toEqual([]);
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
    expect(statSync(join(dataDir, 'sub', 'inner')).mode & 0o7777).toBe(0o600);
    expect(statSync(outside).mode & 0o7777).toBe(0o644);
    expect(lstatSync(join(dataDir, 'link')).isSymbolicLink()).toBe(true);
  });

  it('prepareDataDir creates the directory 0700 and sets the umask so later files are private', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'auth-datadir-unit-')), 'a', 'b');
    const before = process.umask(0o022);
    try {
      expect(prepareDataDir(dir)).toEqual({ umaskSet: true, failed: [] });
      writeFileSync(join(dir, 'setup-token'), 'x');
      mkdirSync(join(dir, 'mail'));
      writeFileSync(join(dir, 'mail', 'message.eml'), 'x');
      expect(loosePaths(dir)).toEqual([]);
      expect(process.umask(0o077)).toBe(0o077);
    } finally {
      // vitest workers are shared: put the umask back.
      process.umask(before);
    }
  });
});
