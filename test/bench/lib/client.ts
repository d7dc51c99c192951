// Drives the service's public API to set a scenario up: users, their tokens,
// the admin's token, some posts, enough audit rows for a page 50 deep.
import { ADMIN } from './service.js';
import { SEED_PASSWORD } from '../seed.js';

export type Setup = {
  tokens: string[];
  emails: string[];
  adminToken: string;
  postIds: string[];
  /** Cursor of page 50 of GET /admin/logs?limit=20 (null when the log is too short). */
  deepCursor: string | null;
};

async function call(base: string, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

export async function expectStatus(base: string, method: string, path: string, want: number, body?: unknown, token?: string) {
  const r = await call(base, method, path, body, token);
  if (r.status !== want) throw new Error(`${method} ${path}: expected ${want}, got ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
  return r.json;
}

async function pool<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

export const benchEmail = (i: number) => `bench-${i}@bench.test`;

export async function login(base: string, email: string, password = SEED_PASSWORD): Promise<string> {
  const r = await expectStatus(base, 'POST', '/auth/login', 200, { email, password });
  return r.accessToken as string;
}

/** Users (registered through the API; an existing one is just signed in), posts, audit rows. */
export async function setUp(base: string, o: { users: number; posts: number; auditRows: number }): Promise<Setup> {
  const emails = Array.from({ length: o.users }, (_, i) => benchEmail(i));
  await pool(emails, 4, async (email, i) => {
    const r = await call(base, 'POST', '/auth/register', { email, password: SEED_PASSWORD, name: `Bench User ${i}` });
    if (r.status !== 201 && r.status !== 409) throw new Error(`register ${email}: ${r.status} ${JSON.stringify(r.json)}`);
  });
  const tokens: string[] = new Array(o.users);
  await pool(emails, 4, async (email, i) => {
    tokens[i] = await login(base, email);
  });
  const adminToken = await login(base, ADMIN.email, ADMIN.password);
  const postIds: string[] = [];
  await pool(
    Array.from({ length: o.posts }, (_, i) => i),
    8,
    async (i) => {
      const p = await expectStatus(
        base,
        'POST',
        '/posts',
        201,
        { title: `Bench post ${i}`, body: 'Bench post body. '.repeat(12).trim() },
        tokens[i % tokens.length],
      );
      postIds.push(p.id as string);
    },
  );
  // Audit rows: every API request writes one; these make the log at least 50 pages long.
  await pool(
    Array.from({ length: o.auditRows }, (_, i) => i),
    16,
    async () => {
      await expectStatus(base, 'GET', '/posts?limit=1', 200);
    },
  );
  const deepCursor = await cursorOfPage(base, adminToken, 50);
  return { tokens, emails, adminToken, postIds, deepCursor };
}

/** Walk GET /admin/logs?limit=20 to the cursor that opens page `page` (waits for the batched writes). */
export async function cursorOfPage(base: string, adminToken: string, page: number): Promise<string | null> {
  const until = Date.now() + 10_000;
  for (;;) {
    let cursor: string | null = null;
    let pages = 1;
    for (; pages < page; pages++) {
      const r = await expectStatus(
        base,
        'GET',
        `/admin/logs?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        200,
        undefined,
        adminToken,
      );
      cursor = r.nextCursor as string | null;
      if (!cursor) break;
    }
    if (cursor && pages === page) return cursor;
    if (Date.now() > until) return null;
    await new Promise((r) => setTimeout(r, 500)); // entries become readable within 2 s
  }
}

export type ServiceCounters = {
  requests: number;
  status5xx: number;
  txRetries: number;
  auditWritten: number;
  auditDropped: number;
  storeDegraded: number;
  rateLimited: number;
  /** Memory composition, MB (prom-client's process metrics): RSS, V8 heap, heap by space, external/array buffers. */
  memory: Record<string, number>;
};

/** The counters of the service's /metrics that say something went wrong under load. */
export async function scrapeCounters(base: string, metricsToken: string): Promise<ServiceCounters | null> {
  let text: string;
  try {
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
    if (!res.ok) return null;
    text = await res.text();
  } catch {
    return null;
  }
  const sum = (name: string, filter: (labels: string) => boolean = () => true) => {
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line);
      if (!m || m[1] !== name || !filter(m[2] ?? '')) continue;
      total += Number(m[3]);
    }
    return total;
  };
  return {
    requests: sum('http_requests_total'),
    status5xx: sum('http_requests_total', (l) => /status="5\d\d"/.test(l)),
    txRetries: sum('db_transaction_retries_total'),
    auditWritten: sum('audit_entries_written_total'),
    auditDropped: sum('audit_entries_dropped_total'),
    storeDegraded: sum('store_degraded_operations_total'),
    rateLimited: sum('rate_limit_rejections_total'),
    memory: memoryOf(text),
  };
}

function memoryOf(text: string): Record<string, number> {
  const mb = (v: number) => Math.round((v / 2 ** 20) * 10) / 10;
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m =
      /^(process_resident_memory_bytes|nodejs_heap_size_total_bytes|nodejs_heap_size_used_bytes|nodejs_external_memory_bytes|nodejs_heap_space_size_total_bytes)(\{space="([a-z_]+)"\})?\s+([0-9.eE+]+)$/.exec(
        line,
      );
    if (!m) continue;
    const name = m[1]!.replace(/^(process_|nodejs_)/, '').replace(/_bytes$/, '');
    out[m[3] ? `heap_space_total.${m[3]}` : name] = mb(Number(m[4]));
  }
  return out;
}
