// The typed client against a real started server, and the bundle a frontend gets.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Tokens } from '../../src/client.js';
import { freePort, ServerProcess } from '../helpers/processes.js';

describe('typed client', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = new ServerProcess(await freePort(), {
      DATA_DIR: mkdtempSync(join(tmpdir(), 'auth-client-')),
      ARGON2_MEMORY_KIB: '1024',
      ARGON2_TIME_COST: '1',
    });
    await server.start(60_000);
  });
  afterAll(async () => {
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('registers, signs in, creates and deletes a post, refreshes and signs out', async () => {
    const seen: (Tokens | null)[] = [];
    const client = createClient(server.url, { onTokens: (t) => void seen.push(t) });
    const { api } = client;
    const email = `client-${Date.now()}@example.test`;
    const reg = await api.auth.register.$post({ json: { email, password: 'client-passphrase-77', name: 'Client' } });
    expect(reg.status).toBe(201);
    expect((await client.login(email, 'client-passphrase-77')).status).toBe(200);
    const me = await api.users.me.$get();
    expect(me.status).toBe(200);
    if (me.status === 200) expect((await me.json()).email).toBe(email);

    const created = await api.posts.$post({ json: { title: 'From the client', body: 'typed' } });
    expect(created.status).toBe(201);
    const post = created.status === 201 ? await created.json() : undefined;
    const del = await api.posts[':id'].$delete({ param: { id: post!.id } });
    expect(del.status).toBe(204);

    const before = await client.getTokens();
    const refreshed = await api.auth.refresh.$post({ json: { refreshToken: before!.refreshToken } });
    expect(refreshed.status).toBe(200);
    const pair = refreshed.status === 200 ? await refreshed.json() : undefined;
    await client.setTokens({ accessToken: pair!.accessToken, refreshToken: pair!.refreshToken });
    expect((await api.users.me.$get()).status).toBe(200);

    await client.logout();
    expect(await client.getTokens()).toBeNull();
    const after = await fetch(`${server.url}/users/me`, { headers: { authorization: `Bearer ${pair!.accessToken}` } });
    expect(after.status).toBe(401);
    expect(seen.length).toBeGreaterThanOrEqual(3);
  });

  it('refreshes once on invalid_token for concurrent requests and keeps the rotated tokens', async () => {
    let refreshCalls = 0;
    const counting: typeof fetch = (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.endsWith('/auth/refresh')) refreshCalls++;
      return fetch(input, init);
    };
    const client = createClient(server.url, { fetch: counting });
    const email = `auto-${Date.now()}@example.test`;
    await client.api.auth.register.$post({ json: { email, password: 'client-passphrase-77', name: 'Auto' } });
    await client.login(email, 'client-passphrase-77');
    const good = (await client.getTokens())!;
    // An access token the server no longer accepts, with a live refresh token.
    await client.setTokens({ accessToken: `${good.accessToken.slice(0, -4)}AAAA`, refreshToken: good.refreshToken });
    const results = await Promise.all(Array.from({ length: 5 }, () => client.api.users.me.$get()));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(refreshCalls).toBe(1);
    const rotated = (await client.getTokens())!;
    expect(rotated.refreshToken).not.toBe(good.refreshToken);
    // The spent refresh token is not reused: a later expiry refreshes with the new one.
    await client.setTokens({ accessToken: 'garbage.token.value', refreshToken: rotated.refreshToken });
    expect((await client.api.users.me.$get()).status).toBe(200);
    expect(refreshCalls).toBe(2);
  });
});

describe('client bundle', () => {
  it('carries none of the server’s packages', async () => {
    const out = await build({
      entryPoints: ['test/fixtures/client-entry.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      minify: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(out.metafile.inputs);
    for (const pkg of [
      'postgres',
      'ioredis',
      '@node-rs/argon2',
      '@electric-sql/pglite',
      'drizzle-orm',
      'pino',
      'prom-client',
      'zod',
      'hono-openapi',
    ]) {
      expect(
        inputs.filter((i) => i.includes(`node_modules/${pkg}/`)),
        pkg,
      ).toEqual([]);
    }
    expect(inputs.some((i) => i.includes('node_modules/hono/'))).toBe(true);
    const bytes = out.outputFiles[0]!.contents.length;
    expect(bytes).toBeLessThan(20_000);
  });
});
