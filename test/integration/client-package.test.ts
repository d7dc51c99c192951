// The typed client as a frontend in another repository gets it: `npm run pack:client`
// makes a tarball, which is installed (offline) into a project outside the
// repository that has hono and nothing else; its calls are type-checked against
// the routes and the installed entry is run.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(repo, 'node_modules/typescript/bin/tsc');

async function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(cmd, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

// A frontend's code: a login, one typed route call, and calls the types must reject.
const consumer = `import { createClient, type Client, type Tokens } from 'auth-system/client';

const seen: (Tokens | null)[] = [];
const auth: Client = createClient('https://auth.example.com', { onTokens: (t) => void seen.push(t) });

export async function signIn(): Promise<string | undefined> {
  const login = await auth.login('ann@example.com', 'a long passphrase');
  if (login.status === 200) {
    const bearer: 'Bearer' = (await login.json()).tokenType;
    void bearer;
  }
  // @ts-expect-error: the login body's email is a string
  await auth.api.auth.login.$post({ json: { email: 1, password: 'a long passphrase' } });
  const me = await auth.api.users.me.$get();
  if (me.status !== 200) return undefined;
  const user = await me.json();
  const permissions: string[] = user.permissions;
  void permissions;
  // @ts-expect-error: no password hash in a User
  void user.passwordHash;
  return user.email;
}
`;

// The installed entry at run time, against a stand-in fetch.
const runtime = `const { createClient } = await import('auth-system/client');
const fetch = async () => Response.json({ accessToken: 'a', refreshToken: 'r', tokenType: 'Bearer', expiresIn: 900 });
const auth = createClient('https://auth.example.com', { fetch });
const res = await auth.login('ann@example.com', 'a long passphrase');
console.log(JSON.stringify({ createClient: typeof createClient, status: res.status, tokens: await auth.getTokens() }));
`;

describe('client package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-client-package-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a frontend outside the repository installs the packed client and type-checks calls against the routes', async () => {
    // Built and packed outside the work tree, so that concurrent runs do not share files.
    const packs = join(dir, 'packs');
    mkdirSync(packs);
    await run('npm', ['run', '--silent', 'pack:client', '--', '--pack-destination', packs], repo, {
      ...process.env,
      CLIENT_PACKAGE_DIR: join(dir, 'client-package'),
    });
    const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz'));
    const { name, version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; version: string };
    expect(tarballs).toEqual([`${name}-${version}.tgz`]);
    const tarball = join(packs, tarballs[0]!);
    const contents = (await run('tar', ['-tzf', tarball], dir)).trim().split('\n').sort();
    expect(contents).toEqual(['package/README.md', 'package/client.d.ts', 'package/client.js', 'package/package.json']);

    // The frontend has hono (here, the repository's copy, linked) and nothing else.
    const app = join(dir, 'frontend');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'frontend',
        private: true,
        type: 'module',
        dependencies: { hono: `file:${join(repo, 'node_modules/hono')}` },
      }),
    );
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], app);
    expect(
      readdirSync(join(app, 'node_modules'))
        .filter((f) => !f.startsWith('.'))
        .sort(),
    ).toEqual(['auth-system', 'hono']);
    const entry = readFileSync(join(app, 'node_modules/auth-system/client.js'), 'utf8');
    expect([...entry.matchAll(/\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']/g)].map((m) => m[1] ?? m[2])).toEqual([
      'hono/client',
    ]);

    // Checked as a frontend would, libraries included (no skipLibCheck): an
    // unresolved import in the declarations, or types that decayed to any
    // (an unused @ts-expect-error), fails here.
    writeFileSync(join(app, 'index.ts'), consumer);
    const common = ['--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022,dom', 'index.ts'];
    await run(process.execPath, [tsc, '--module', 'nodenext', '--moduleResolution', 'nodenext', ...common], app);
    await run(process.execPath, [tsc, '--module', 'preserve', '--moduleResolution', 'bundler', ...common], app);

    const out = await run(process.execPath, ['--input-type=module', '-e', runtime], app);
    expect(JSON.parse(out)).toEqual({ createClient: 'function', status: 200, tokens: { accessToken: 'a', refreshToken: 'r' } });
  }, 120_000);
});
