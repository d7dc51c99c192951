// Small request helpers over app.request(): JSON in, status/body/headers out.
import { randomBytes } from 'node:crypto';
import { createClient, type Client } from '../../src/client.js';
import type { TestApp } from './app.js';
import { ADMIN } from './app.js';

export type Res = { status: number; body: any; headers: Headers; text: string };

export type Call = (
  method: string,
  path: string,
  opts?: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string; env?: unknown },
) => Promise<Res>;

export function client(app: Pick<TestApp, 'request'>): Call {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const res = await app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) }, opts.env as never);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, headers: res.headers, text };
  };
}

export const uniqueEmail = (tag = 'u') => `${tag}-${randomBytes(5).toString('hex')}@example.test`;
export const PASSWORD = 'a-Long-and-Unusual-passphrase-42';

export type Session = { email: string; userId: string; accessToken: string; refreshToken: string };

export async function registerAndLogin(call: Call, opts: { email?: string; password?: string; name?: string } = {}): Promise<Session> {
  const email = opts.email ?? uniqueEmail();
  const password = opts.password ?? PASSWORD;
  const reg = await call('POST', '/auth/register', { body: { email, password, name: opts.name ?? 'Test User' } });
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${reg.text}`);
  return { ...(await login(call, email, password)), userId: reg.body.user.id };
}

export async function login(call: Call, email: string, password: string): Promise<Session> {
  const res = await call('POST', '/auth/login', { body: { email, password } });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  const claims = JSON.parse(Buffer.from(res.body.accessToken.split('.')[1], 'base64url').toString());
  return { email, userId: claims.sub, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}

export const loginAdmin = (call: Call) => login(call, ADMIN.email, ADMIN.password);

/** A user holding exactly these roles, signed in after the assignment. */
export async function userWithRoles(call: Call, admin: Session, roles: string[]): Promise<Session> {
  const s = await registerAndLogin(call);
  const r = await call('PUT', `/users/${s.userId}/roles`, { token: admin.accessToken, body: { roles } });
  if (r.status !== 200) throw new Error(`assign failed: ${r.status} ${r.text}`);
  return login(call, s.email, PASSWORD);
}

/**
 * The typed client (src/client.ts) over app.request(): paths, methods, params
 * and bodies are checked against the routes, so a route's change breaks the
 * test at compile time. With a session, every request carries its access
 * token, and a 401 is returned as it is (the client never refreshes by itself
 * here: a test refreshes when it means to).
 */
export function typed(app: Pick<TestApp, 'request'>, session?: { accessToken: string }): Client {
  return createClient('http://localhost', {
    fetch: (input, init) => Promise.resolve(app.request(input instanceof URL ? input.href : input, init)),
    getTokens: () => (session ? { accessToken: session.accessToken, refreshToken: '' } : null),
  });
}

/** A typed response read like a Call's: status, parsed body and text. */
export async function read(res: Response): Promise<Res> {
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers, text };
}
