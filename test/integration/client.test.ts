// The typed client against a real started server, and the bundle a frontend gets.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleParser } from 'mailparser';
import { createClient, type Tokens } from '../../src/client.js';
import { sleep } from '../helpers/eventually.js';
import { tokenFrom } from '../helpers/smtp.js';
import { freePort, ServerProcess } from '../helpers/processes.js';

describe('typed client', () => {
  let server: ServerProcess;
  const dataDir = mkdtempSync(join(tmpdir(), 'auth-client-'));

  beforeAll(async () => {
    server = new ServerProcess(await freePort(), {
      DATA_DIR: dataDir,
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

  it('resets a forgotten password from the mailed link, lists and ends sessions, exports and deletes the account', async () => {
    const client = createClient(server.url);
    const email = `account-${Date.now()}@example.test`;
    expect((await client.api.auth.register.$post({ json: { email, password: 'client-passphrase-77', name: 'Client' } })).status).toBe(201);
    expect((await client.login(email, 'client-passphrase-77')).status).toBe(200);
    const other = createClient(server.url);
    expect((await other.login(email, 'client-passphrase-77')).status).toBe(200);
    const listed = await client.sessions();
    expect(listed.status).toBe(200);
    const items = listed.status === 200 ? (await listed.json()).items : [];
    expect(items).toHaveLength(2);
    const mine = items.find((i) => i.current)!;
    const theirs = items.find((i) => !i.current)!;
    expect((await client.endSession(theirs.id)).status).toBe(204);
    expect((await other.api.users.me.$get()).status).toBe(401);
    expect((await client.endOtherSessions()).status).toBe(204);
    expect(mine.id).toBeTruthy();

    // Without SMTP_URL the server writes the mail to DATA_DIR/mail as an .eml file.
    expect((await client.forgotPassword(email)).status).toBe(202);
    const mailDir = join(dataDir, 'mail');
    let token: string | undefined;
    for (let i = 0; i < 200 && !token; i++) {
      for (const f of existsSync(mailDir) ? readdirSync(mailDir) : []) {
        const mail = await simpleParser(readFileSync(join(mailDir, f)));
        if ((mail.to as { text: string }).text === email && /reset/i.test(mail.subject ?? '')) token = tokenFrom({ text: mail.text ?? '' });
      }
      if (!token) await sleep(25);
    }
    expect(token).toBeDefined();
    expect((await client.resetPassword(token!, 'client-new-passphrase-88')).status).toBe(204);
    expect((await client.login(email, 'client-new-passphrase-88')).status).toBe(200);

    const exported = await client.exportAccount();
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-disposition')).toMatch(/^attachment/);
    const doc = (await exported.json()) as { profile: { email: string } };
    expect(doc.profile.email).toBe(email);

    const identities = await client.identities();
    expect(identities.status === 200 ? (await identities.json()).items : null).toEqual([]);
    // A step-up without the password this account has is refused before anything else is looked at.
    expect((await client.unlinkIdentity('00000000-0000-4000-8000-000000000000', undefined)).status).toBe(400);
    expect((await client.unlinkIdentity('00000000-0000-4000-8000-000000000000', 'client-new-passphrase-88')).status).toBe(404);

    expect((await client.deleteAccount('client-new-passphrase-88')).status).toBe(204);
    expect(await client.getTokens()).toBeNull();
    expect((await client.login(email, 'client-new-passphrase-88')).status).toBe(401);
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
