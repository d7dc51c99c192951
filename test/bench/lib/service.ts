// Which service the bench runs, and how: the working tree compiled to dist/
// (the default, what the Docker image runs), the working tree through tsx
// (--tsx), or a committed revision in an isolated snapshot (--ref REV: git
// archive + npm ci + build under the system temp directory, cached by commit),
// which is how before/after figures of a change are taken while the tree moves.
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startProc, type Proc } from './proc.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');

export type ServiceBuild = {
  /** Root of the checkout that holds the service. */
  dir: string;
  kind: 'dist' | 'tsx';
  /** Commit (for --ref) or 'working tree'. */
  source: string;
  buildOk: boolean;
  buildLog: string;
};

function sh(cmd: string, args: string[], cwd: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export function prepareService(opts: { ref?: string; tsx?: boolean; build?: boolean; log: (s: string) => void }): ServiceBuild {
  if (opts.ref) {
    const sha = execFileSync('git', ['rev-parse', '--verify', `${opts.ref}^{commit}`], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dir = join(tmpdir(), 'auth-bench-snapshots', sha);
    const ready = join(dir, '.bench-ready');
    if (!existsSync(ready)) {
      opts.log(`snapshot of ${opts.ref} (${sha.slice(0, 10)}) → ${dir}: git archive, npm ci, build`);
      mkdirSync(dir, { recursive: true });
      execFileSync('sh', ['-c', `git -C "${REPO_ROOT}" archive ${sha} | tar -x -C "${dir}"`]);
      const ci = sh('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], dir);
      if (!ci.ok) throw new Error(`npm ci in the snapshot failed:\n${ci.out.slice(-4000)}`);
      // The whole build, as the image makes it (tsc, then the pages' bundle and registry).
      const build = sh('npm', ['run', '--silent', 'build'], dir);
      if (!existsSync(join(dir, 'dist/server.js'))) throw new Error(`build of the snapshot failed:\n${build.out.slice(-4000)}`);
      writeFileSync(ready, build.out);
    }
    return { dir, kind: 'dist', source: sha, buildOk: true, buildLog: '' };
  }
  if (opts.tsx) return { dir: REPO_ROOT, kind: 'tsx', source: 'working tree', buildOk: true, buildLog: '' };
  if (opts.build === false) {
    if (!existsSync(join(REPO_ROOT, 'dist/server.js'))) throw new Error('--no-build, but there is no dist/server.js');
    return { dir: REPO_ROOT, kind: 'dist', source: 'working tree (existing dist/)', buildOk: true, buildLog: '' };
  }
  opts.log('npm run build (working tree → dist/)');
  const build = sh('npm', ['run', '--silent', 'build'], REPO_ROOT);
  if (!build.ok) {
    if (!existsSync(join(REPO_ROOT, 'dist/server.js'))) throw new Error(`npm run build failed:\n${build.out.slice(-4000)}`);
    opts.log(
      `WARNING: npm run build reported errors (JavaScript was still emitted; benchmarking it):\n${build.out.split('\n').slice(0, 8).join('\n')}`,
    );
  }
  return { dir: REPO_ROOT, kind: 'dist', source: 'working tree', buildOk: build.ok, buildLog: build.out };
}

/** One Ed25519 key for every service process of a run: tokens work on all of them. */
export const benchJwk = JSON.stringify(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }));
/** One provider RSA key for every service process of a run (production requires one). */
export const benchRsaJwk = JSON.stringify(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }));
/** One MFA_ENCRYPTION_KEY for every service process of a run (production requires one; they share a database). */
export const benchMfaKey = randomBytes(32).toString('base64');
/** Production refuses public metrics: the bench scrapes /metrics with this token. */
export const benchMetricsToken = randomBytes(24).toString('base64url');
export const ADMIN = { email: 'bench-admin@bench.test', password: 'Bench-Admin-Passw0rd!' };

/**
 * BENCH_SERVICE_ENV='KEY=value KEY2=value': extra variables for every service
 * process, for experiments (DATABASE_POOL_SIZE=4, MALLOC_ARENA_MAX=2, …).
 */
export function extraServiceEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (process.env.BENCH_SERVICE_ENV ?? '').split(/\s+/).filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i > 0) out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

export type ServiceOptions = {
  name: string;
  build: ServiceBuild;
  runDir: string;
  /** Unset: embedded mode (PGlite under DATA_DIR, in-process store). */
  databaseUrl?: string;
  redisUrl?: string;
  audit?: boolean;
  cpuProfDir?: string;
  env?: Record<string, string>;
  /** Bun or Deno: the source through the runtime's own entry (src/bun.ts, src/deno.ts), as `npm run start:bun|deno` runs it. */
  runtime?: 'bun' | 'deno';
};

/** The command line of `npm run start:bun` / `start:deno` (package.json), with this run's DATA_DIR writable. */
function runtimeCommand(runtime: 'bun' | 'deno', dataDir: string): { command: string; args: string[] } {
  // The platform package's binary (install scripts not run), else the one npm put in node_modules/.bin.
  const first = (dir: string, match: (name: string) => boolean, tail: string, bin: string) => {
    const base = join(REPO_ROOT, 'node_modules', dir);
    const hit = existsSync(base) ? readdirSync(base).find((n) => match(n) && existsSync(join(base, n, tail))) : undefined;
    const path = hit ? join(base, hit, tail) : join(REPO_ROOT, 'node_modules/.bin', bin);
    if (!existsSync(path)) throw new Error(`no ${bin} binary in node_modules: npm install`);
    return path;
  };
  if (runtime === 'bun')
    return { command: first('@oven', (n) => n.startsWith('bun-'), 'bin/bun', 'bun'), args: ['--no-env-file', 'src/bun.ts'] };
  const esbuild = first('@esbuild', () => true, 'bin/esbuild', 'esbuild');
  return {
    command: first('@deno', () => true, 'deno', 'deno'),
    args: [
      'run',
      '--no-lock',
      '--node-modules-dir=manual',
      '--sloppy-imports',
      '--allow-net',
      '--allow-env',
      '--allow-read',
      `--allow-write=${dataDir}`,
      '--allow-ffi=node_modules/@node-rs',
      '--allow-sys=hostname',
      `--allow-run=${esbuild}`,
      'src/deno.ts',
    ],
  };
}

/**
 * The node flags of the Docker image's command (the last `CMD ["node", ...flags,
 * "dist/server.js"]` of the checkout's Dockerfile): the bench runs the service
 * as the image does, heap limit included. Fails loudly if the Dockerfile has no
 * such line, rather than measuring something else.
 */
export function imageNodeFlags(dir: string): string[] {
  const cmds = [...readFileSync(join(dir, 'Dockerfile'), 'utf8').matchAll(/^CMD\s+(\[.*\])\s*$/gm)];
  const last = cmds.at(-1);
  const argv = last ? (JSON.parse(last[1]!) as string[]) : [];
  const script = argv.indexOf('dist/server.js');
  if (argv[0] !== 'node' || script < 1) throw new Error(`no CMD ["node", …, "dist/server.js"] in ${join(dir, 'Dockerfile')}`);
  return argv.slice(1, script);
}

export async function startService(o: ServiceOptions): Promise<Proc> {
  const port = await freePort();
  const dataDir = join(o.runDir, `data-${o.name}`);
  mkdirSync(dataDir, { recursive: true });
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    JWT_PRIVATE_KEY: benchJwk,
    JWT_RSA_PRIVATE_KEY: benchRsaJwk,
    MFA_ENCRYPTION_KEY: benchMfaKey,
    // Production needs both; the bench sends no mail (verification is off).
    SMTP_URL: 'smtp://127.0.0.1:9',
    PUBLIC_URL: 'https://bench.example.test',
    EMAIL_VERIFICATION: 'off',
    METRICS_TOKEN: benchMetricsToken,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // The bench drives a handful of users far past any real per-client limit;
    // the limiter still runs (and counts) on every request.
    RATE_LIMIT_REQUESTS: '1000000',
    LOGIN_IP_MAX_FAILURES: '1000000',
    // Tokens must outlive a full run (the soak alone is five minutes).
    ACCESS_TOKEN_TTL_SECONDS: '86400',
    AUDIT_LOG: o.audit === false ? 'off' : 'on',
    BOOTSTRAP_ADMIN_EMAIL: ADMIN.email,
    BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
    ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}),
    ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}),
    ...extraServiceEnv(),
    ...o.env,
  };
  if (o.runtime) {
    const { command, args } = runtimeCommand(o.runtime, dataDir);
    return startProc({
      name: o.name,
      command,
      args,
      env,
      // The runtimes resolve node_modules from the checkout.
      cwd: REPO_ROOT,
      port,
      readyPath: '/readyz',
      logFile: join(o.runDir, `${o.name}.log`),
      readyTimeoutMs: 120_000,
    });
  }
  const prof = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`, `--cpu-prof-name=${o.name}.cpuprofile`] : [];
  const flags = imageNodeFlags(o.build.dir);
  const args =
    o.build.kind === 'dist'
      ? [...flags, ...prof, join(o.build.dir, 'dist/server.js')]
      : [...flags, ...prof, '--import', import.meta.resolve('tsx'), join(o.build.dir, 'src/server.ts')];
  return startProc({
    name: o.name,
    command: process.execPath,
    args,
    env,
    // Not the repository: a developer's .env must not change what is measured.
    cwd: o.runDir,
    port,
    readyPath: '/readyz',
    logFile: join(o.runDir, `${o.name}.log`),
    readyTimeoutMs: 120_000,
  });
}

/** A small server from test/bench (baseline.ts, argon2-server.ts) in its own process. */
export async function startBenchServer(
  name: string,
  file: string,
  runDir: string,
  readyPath: string,
  env: Record<string, string> = {},
): Promise<Proc> {
  const port = await freePort();
  return startProc({
    name,
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'test/bench', file)],
    env: { NODE_ENV: 'production', PORT: String(port), ...env },
    cwd: REPO_ROOT,
    port,
    readyPath,
    logFile: join(runDir, `${name}.log`),
  });
}
