// `npm test` without its servers: the suite's globalSetup
// (test/helpers/prerequisites.ts) stops the run before any test file, with one
// message naming what is missing and how to start it or point elsewhere, rather
// than a page of connection errors and timeouts. Checked by running vitest as a
// newcomer would, with a server address nothing listens on.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/processes.js';

/** `vitest run <a small file>` with these variables; its exit code and everything it printed. */
async function vitestWith(vars: Record<string, string>): Promise<{ code: number | null; output: string }> {
  // The nested vitest is a fresh run, not a worker of this one.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(process.cwd(), 'node_modules/vitest/vitest.mjs'), 'run', 'test/unit/recovery-codes.test.ts', '--typecheck.enabled=false'],
      { env: { ...env, ...vars, NO_COLOR: '1' } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, output: stdout + stderr }),
    );
  });
}

describe('npm test when PostgreSQL or Redis is not answering', () => {
  it('stops before any test with one message naming the missing server and how to start it or point elsewhere', async () => {
    const port = await freePort();
    const { code, output } = await vitestWith({ TEST_REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(code).not.toBe(0);
    expect(output).toContain('The test suite needs PostgreSQL and Redis, and could not use:');
    expect(output).toContain(`- Redis at redis://127.0.0.1:${port} (TEST_REDIS_URL): connect ECONNREFUSED 127.0.0.1:${port}`);
    // PostgreSQL answers: only Redis is named.
    expect(output).not.toContain('- PostgreSQL at');
    expect(output).toContain('redis-server --daemonize yes');
    expect(output).toContain('TEST_DATABASE_URL / TEST_REDIS_URL');
    // No test file ran.
    expect(output).not.toMatch(/Test Files|recovery-codes/);
  });

  it('names both when neither answers, without the password in the database URL', async () => {
    const [pg, redis] = [await freePort(), await freePort()];
    const { code, output } = await vitestWith({
      TEST_DATABASE_URL: `postgresql://postgres:hunter2@127.0.0.1:${pg}/postgres`,
      TEST_REDIS_URL: `redis://127.0.0.1:${redis}`,
    });
    expect(code).not.toBe(0);
    expect(output).toContain(
      `- PostgreSQL at postgresql://postgres:***@127.0.0.1:${pg}/postgres (TEST_DATABASE_URL): connect ECONNREFUSED`,
    );
    expect(output).toContain(`- Redis at redis://127.0.0.1:${redis} (TEST_REDIS_URL): connect ECONNREFUSED`);
    expect(output).toContain('pg_ctlcluster');
    expect(output).not.toContain('hunter2');
  });
});
