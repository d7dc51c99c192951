// The compose file's one-shot roach-init job, run for real with sh against a
// stand-in `cockroach` (no CockroachDB binary or Docker engine here): its
// first `up` must not fail while the nodes come up, and the licence key
// must never appear on a command line. And, read statically, the app's
// environment and Redis's persistence.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config.js';
import { testRsaKey } from '../helpers/app.js';

type Compose = { services: Record<string, { command?: string[]; environment?: Record<string, string> }> };

/** The roach-init script as the container's sh receives it (compose turns $$ into $). */
function roachInitScript(): string {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as Compose;
  const command = compose.services['roach-init']?.command?.[0];
  if (!command) throw new Error('roach-init has no command');
  return command.replaceAll('$$', '$');
}

/**
 * A bin directory with a fake `cockroach` (init refused `initFailures` times,
 * then "already initialized"; SQL refused `sqlFailures` times, then answering)
 * and a `sleep` that returns at once. Every argv and every stdin is logged.
 */
function fakeCluster(opts: { initFailures: number; sqlFailures: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'roach-init-'));
  const write = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  write(
    'cockroach',
    `echo "$*" >> "${dir}/argv.log"
n() { c=$(cat "${dir}/$1" 2>/dev/null || echo 0); c=$((c + 1)); echo "$c" > "${dir}/$1"; echo "$c"; }
case "$1" in
  init) [ "$(n init.count)" -gt ${opts.initFailures} ] && { echo "ERROR: cluster has already been initialized"; exit 1; }; echo "connection refused" >&2; exit 1 ;;
  sql)
    case "$*" in *"--execute=SELECT 1"*) [ "$(n select.count)" -gt ${opts.sqlFailures} ] && exit 0; echo "node is not ready" >&2; exit 1 ;; esac
    cat >> "${dir}/stdin.log"; exit 0 ;;
esac
exit 2`,
  );
  write('sleep', 'exit 0');
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8');
    } catch {
      return '';
    }
  };
  return {
    run: (env: Record<string, string>) =>
      spawnSync('sh', ['-ec', roachInitScript()], {
        env: { PATH: `${dir}:${process.env.PATH}`, ...env },
        encoding: 'utf8',
        timeout: 30_000,
      }),
    argv: () => read('argv.log'),
    stdin: () => read('stdin.log'),
  };
}

describe('compose: roach-init', () => {
  it('waits for init and for SQL to answer, then creates the database, the certificate-only user and its isolation level', () => {
    const cluster = fakeCluster({ initFailures: 2, sqlFailures: 3 });
    const run = cluster.run({});
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('database auth and user app ready');
    const calls = cluster.argv().trim().split('\n');
    expect(calls.filter((c) => c.startsWith('init'))).toHaveLength(3);
    expect(calls.filter((c) => c.includes('--execute=SELECT 1'))).toHaveLength(4);
    const sql = cluster.stdin();
    expect(sql).toContain('CREATE DATABASE IF NOT EXISTS auth;');
    expect(sql).toContain('CREATE USER IF NOT EXISTS app;');
    expect(sql).toContain("ALTER ROLE app SET default_transaction_isolation = 'serializable';");
    expect(sql).toContain('host all app all cert');
    expect(sql).not.toContain('enterprise.license');
  });

  it('sets the organization and licence through stdin, quoted, never on a command line', () => {
    const cluster = fakeCluster({ initFailures: 0, sqlFailures: 0 });
    const run = cluster.run({ COCKROACH_LICENSE: 'crl-0-secret-licence-key', COCKROACH_ORGANIZATION: "O'Brien & Co" });
    expect(run.status, run.stderr).toBe(0);
    expect(cluster.stdin()).toContain("SET CLUSTER SETTING cluster.organization = 'O''Brien & Co';");
    expect(cluster.stdin()).toContain("SET CLUSTER SETTING enterprise.license = 'crl-0-secret-licence-key';");
    expect(cluster.argv()).not.toContain('crl-0-secret-licence-key');
    expect(run.stdout + run.stderr).not.toContain('crl-0-secret-licence-key');
  });

  it('refuses a licence without its organization, and gives up (bounded) when SQL never answers', () => {
    const noOrg = fakeCluster({ initFailures: 0, sqlFailures: 0 }).run({ COCKROACH_LICENSE: 'crl-0-key' });
    expect(noOrg.status).toBe(1);
    expect(noOrg.stderr).toContain('COCKROACH_ORGANIZATION');
    const silent = fakeCluster({ initFailures: 0, sqlFailures: 1_000 }).run({});
    expect(silent.status).toBe(1);
    expect(silent.stderr).toContain('did not accept SQL');
  });
});

describe('compose: the service and Redis as configured', () => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as Compose & {
    'x-app': { environment: Record<string, string> };
  };

  it('gives the app an environment that passes the production checks with only the required secrets set: /metrics is not public', () => {
    const given: Record<string, string> = {
      REDIS_PASSWORD: 'ci',
      JWT_PRIVATE_KEY: 'ci',
      // Parsed by the configuration (its size is checked), so a real one.
      JWT_RSA_PRIVATE_KEY: testRsaKey(),
      SMTP_URL: 'smtp://ci',
      PUBLIC_URL: 'https://ci.example.test',
      MFA_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
    };
    // Compose's interpolation: ${NAME:?message} must be given, ${NAME:-default} falls back.
    const env = Object.fromEntries(
      Object.entries(compose['x-app'].environment).map(([name, value]) => [
        name,
        String(value).replace(/\$\{([A-Z_0-9]+)(?::([?-])([^}]*))?\}/g, (_, v: string, op?: string, rest?: string) => {
          if (given[v] !== undefined) return given[v]!;
          if (op === '?') throw new Error(`${v} is required: ${rest}`);
          return op === '-' ? (rest ?? '') : '';
        }),
      ]),
    );
    expect(env.NODE_ENV).toBe('production');
    let problems: string[] = [];
    try {
      loadConfig(env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    // The certificate files are in the container, not here.
    expect(problems.filter((p) => !/^DATABASE_(CA_CERT|CLIENT_CERT|CLIENT_KEY): file not found/.test(p))).toEqual([]);
    expect(env.METRICS_PORT).toMatch(/^\d+$/);
  });

  it('runs Redis with its append-only file on a volume: lockouts survive a restart', () => {
    const redis = compose.services.redis as { command?: string[]; volumes?: string[] };
    expect(redis.command?.[0]).toMatch(/appendonly yes/);
    expect(redis.command?.[0]).toMatch(/dir \/data/);
    expect(redis.volumes).toContain('redis-data:/data');
  });
});
