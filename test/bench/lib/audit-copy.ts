// Micro-benchmark: is `COPY audit_logs (...) FROM STDIN` (text format) cheaper
// than the audit writer's `INSERT ... SELECT * FROM unnest($1::timestamptz[], ...)`?
// Run: npx tsx test/bench/lib/audit-copy.ts [--batches 200] [--size 500] [--rounds 5]
//
// Every path writes the same pre-generated, realistic rows over a postgres.js
// connection of its own kind (max: 1, so one PostgreSQL backend each): unnest
// and copy over an ordinary one (the socket src/db/connect.ts gets), copy-nodelay
// over one whose socket has Nagle's algorithm off (postgres.js sends CopyDone
// as a separate small write, which otherwise waits for a delayed ACK, ~40 ms a
// batch). The database is its own
// (audit_copy_bench on BENCH_PG_URL's server, created and dropped here, migrated
// as the tests do). Each round truncates the table, then writes every batch
// with one path; the paths alternate, after one warm-up round each. Per round:
// wall time, this process's CPU (process.cpuUsage: serialising and the driver)
// and the backend's CPU (utime + stime from /proc/<pg_backend_pid()>/stat: the
// server runs locally). Medians per row, and COPY / unnest ratios; and
// the CPU of serialising alone (array literals vs COPY text, no database).
// At the end, two checks of the COPY path: awkward text round-trips exactly,
// and what a COPY refused for its data does with postgres.js (the error must
// reach the caller, with its SQLSTATE, for the writer's halving to work).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { arrayLiteral, AuditRows, insertBatch, type AuditEntry } from '../../../src/audit/audit-log.js';
import type { Db } from '../../../src/db/connect.js';
import { dbErrorCode } from '../../../src/db/errors.js';
import { migrate } from '../../../src/db/migrate.js';
import * as schema from '../../../src/db/schema.js';
import { dropDatabase, recreateDatabase, urlFor } from './pg.js';

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '200' },
    size: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '5' },
    database: { type: 'string', default: 'audit_copy_bench' },
  },
});
const BATCHES = Number(args.batches);
const SIZE = Number(args.size);
const ROUNDS = Number(args.rounds);
const DB_NAME = args.database!;
const TICK_NS = 1e9 / 100; // USER_HZ

// ---- the two write paths --------------------------------------------------

const COLUMNS = ['at', 'request_id', 'actor_id', 'ip', 'method', 'path', 'route', 'status', 'action', 'detail'] as const;

// (a) The writer's own statement: insertBatch from src/audit/audit-log.ts, fed
// the column buffer the writer keeps.
const unnestBatch = (db: Db, batch: AuditEntry[]) => insertBatch(db, AuditRows.of(batch));

// (b) COPY FROM STDIN, text format: tab-separated fields, one line per row,
// \N for NULL; backslash, tab, newline and carriage return escaped.
const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const copyField = (s: string) => (COPY_SPECIAL.test(s) ? s.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPES[c]!) : s);
const copyNullable = (s: string | null | undefined) => (s == null ? '\\N' : copyField(s));

function copyRows(batch: AuditEntry[]): string {
  let out = '';
  for (const e of batch) {
    out += `${e.at.toISOString()}\t${copyField(e.requestId)}\t${copyNullable(e.actorId)}\t${copyField(e.ip)}\t${copyField(e.method)}\t${copyField(e.path)}\t${copyField(e.route)}\t${e.status}\t${copyField(e.action)}\t${copyNullable(e.detail)}\n`;
  }
  return out;
}

async function copyBatch(client: postgres.Sql, batch: AuditEntry[]): Promise<void> {
  const w = await client.unsafe(`COPY audit_logs (${COLUMNS.join(', ')}) FROM STDIN`).writable();
  await new Promise<void>((resolve, reject) => {
    w.once('error', reject);
    w.end(copyRows(batch), () => resolve());
  });
}

// ---- realistic rows ---------------------------------------------------------

const ACTORS = Array.from({ length: 50 }, () => randomUUID());
const ROUTES: [string, string, string, () => string][] = [
  ['GET', '/posts', 'posts.list', () => `/posts?limit=20${Math.random() < 0.5 ? `&cursor=${randomUUID()}` : ''}`],
  ['GET', '/posts/:id', 'posts.read', () => `/posts/${randomUUID()}`],
  ['POST', '/posts', 'posts.create', () => '/posts'],
  ['GET', '/users/me', 'users.me.read', () => '/users/me'],
  ['POST', '/auth/login', 'auth.login', () => '/auth/login'],
  ['POST', '/auth/refresh', 'auth.refresh', () => '/auth/refresh'],
  ['DELETE', '/posts/:id', 'posts.delete', () => `/posts/${randomUUID()}`],
];
const DETAILS: [number, string | null][] = [
  [200, null],
  [200, null],
  [200, null],
  [200, null],
  [201, null],
  [401, 'login_failed'],
  [401, 'invalid_token'],
  [403, 'permission_denied: posts:delete:any'],
  [429, 'rate_limited'],
];

function makeRows(n: number): AuditEntry[] {
  const t0 = Date.now() - 3_600_000;
  return Array.from({ length: n }, (_, i) => {
    const [method, route, action, path] = ROUTES[i % ROUTES.length]!;
    const [status, detail] = DETAILS[(i * 7) % DETAILS.length]!;
    return {
      at: new Date(t0 + i),
      requestId: randomUUID(),
      actorId: i % 4 === 0 ? null : ACTORS[i % ACTORS.length]!,
      ip: i % 3 === 0 ? `2001:db8::${(i % 65535).toString(16)}` : `10.0.${(i >> 8) & 255}.${i & 255}`,
      method,
      path: path(),
      route,
      status,
      action,
      detail,
    };
  });
}

// ---- measuring --------------------------------------------------------------

function backendCpuNs(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_NS;
}

type Figures = { wallNs: number; nodeNs: number; pgNs: number };
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Nagle off on the connection's socket: postgres.js leaves it on (see the report at the end). */
const noDelaySocket = (o: { host: string[]; port: number[] }) =>
  new Promise<import('node:net').Socket>((resolve, reject) => {
    const s = connect(o.port[0]!, o.host[0]!);
    s.setNoDelay(true);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });

async function main() {
  await recreateDatabase(DB_NAME);
  const opts = { max: 1, idle_timeout: 0, max_lifetime: null, onnotice: () => {} };
  const client = postgres(urlFor(DB_NAME), opts);
  // `socket` is a documented option that postgres.js's types leave out.
  const fastOpts = { ...opts, socket: noDelaySocket };
  const fast = postgres(urlFor(DB_NAME), fastOpts);
  try {
    const db = drizzle(client, { schema }) as unknown as Db;
    await migrate(db);
    const pidOf = async (c: postgres.Sql) => ((await c`select pg_backend_pid() as pid`) as unknown as [{ pid: number }])[0].pid;
    const pids = new Map([
      [client, await pidOf(client)],
      [fast, await pidOf(fast)],
    ]);
    const rows = makeRows(BATCHES * SIZE);
    const batches = Array.from({ length: BATCHES }, (_, i) => rows.slice(i * SIZE, (i + 1) * SIZE));
    const paths = {
      unnest: { conn: client, write: (b: AuditEntry[]) => unnestBatch(db, b) },
      copy: { conn: client, write: (b: AuditEntry[]) => copyBatch(client, b) },
      'copy-nodelay': { conn: fast, write: (b: AuditEntry[]) => copyBatch(fast, b) },
    };
    type Name = keyof typeof paths;
    const names = Object.keys(paths) as Name[];

    async function round(name: Name): Promise<Figures> {
      const { conn, write } = paths[name];
      const pid = pids.get(conn)!;
      await client`truncate audit_logs`;
      const pg0 = backendCpuNs(pid);
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (const b of batches) await write(b);
      const wallNs = Number(process.hrtime.bigint() - t0);
      const cpu = process.cpuUsage(cpu0);
      const pgNs = backendCpuNs(pid) - pg0;
      const [{ n }] = (await client`select count(*)::int as n from audit_logs`) as unknown as [{ n: number }];
      if (n !== rows.length) throw new Error(`${name}: ${n} rows written, expected ${rows.length}`);
      if ((await pidOf(conn)) !== pid) throw new Error('the connection was replaced during the round');
      return { wallNs, nodeNs: (cpu.user + cpu.system) * 1000, pgNs };
    }

    // Serialising alone (no database): the writer's share of the Node CPU.
    const serialise = (f: (b: AuditEntry[]) => unknown) => {
      const c0 = process.cpuUsage();
      for (let k = 0; k < 3; k++) for (const b of batches) f(b);
      const c = process.cpuUsage(c0);
      return ((c.user + c.system) * 1000) / (3 * rows.length) / 1000;
    };
    const literals = (batch: AuditEntry[]) => {
      const col = (f: (e: AuditEntry) => string | number | null) => arrayLiteral(batch.map(f));
      return [
        col((e) => e.at.toISOString()),
        col((e) => e.requestId),
        col((e) => e.actorId ?? null),
        col((e) => e.ip),
        col((e) => e.method),
        col((e) => e.path),
        col((e) => e.route),
        col((e) => e.status),
        col((e) => e.action),
        col((e) => e.detail ?? null),
      ];
    };
    serialise(literals);
    serialise(copyRows);
    console.log(
      `# serialising only: array literals ${serialise(literals).toFixed(2)} µs/row, COPY text ${serialise(copyRows).toFixed(2)} µs/row`,
    );

    console.log(
      `# ${BATCHES} batches x ${SIZE} rows, ${ROUNDS} rounds per path (after 1 warm-up each), backend pids ${[...pids.values()].join(', ')}`,
    );
    for (const name of names) await round(name);
    const results = Object.fromEntries(names.map((n) => [n, [] as Figures[]])) as Record<Name, Figures[]>;
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? [...names].reverse() : names;
      for (const name of order) {
        const f = await round(name);
        results[name].push(f);
        const per = (ns: number) => (ns / rows.length / 1000).toFixed(2);
        console.log(
          `round ${r + 1} ${name.padEnd(12)} wall ${per(f.wallNs)} µs/row  node ${per(f.nodeNs)} µs/row  pg ${per(f.pgNs)} µs/row  total cpu ${per(f.nodeNs + f.pgNs)} µs/row`,
        );
      }
    }

    const med = (name: Name, k: (f: Figures) => number) => median(results[name].map(k)) / rows.length / 1000;
    const keys: [string, (f: Figures) => number][] = [
      ['wall', (f) => f.wallNs],
      ['node cpu', (f) => f.nodeNs],
      ['pg cpu', (f) => f.pgNs],
      ['node+pg cpu', (f) => f.nodeNs + f.pgNs],
    ];
    console.log('\n| per row (median µs) | unnest | copy | copy / unnest | copy-nodelay | copy-nodelay / unnest |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const [label, k] of keys) {
      const a = med('unnest', k);
      const b = med('copy', k);
      const c = med('copy-nodelay', k);
      console.log(`| ${label} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(b / a).toFixed(2)} | ${c.toFixed(2)} | ${(c / a).toFixed(2)} |`);
    }

    // Awkward text through the COPY path comes back exactly.
    await client`truncate audit_logs`;
    const odd = ['tab\there', 'new\nline', 'cr\rlf\r\n', 'back\\slash', '\\N', '\\.', 'quote"s\'', '{a,b}', 'ünïcødé 🔑', '', 'NULL'];
    const oddRows: AuditEntry[] = odd.map((s, i) => ({ ...rows[i]!, requestId: `odd-${i}`, path: s, detail: i % 2 ? s : null, ip: s }));
    await copyBatch(client, oddRows);
    const back = await client<
      { path: string; detail: string | null; ip: string }[]
    >`select path, detail, ip from audit_logs order by request_id`;
    const sorted = [...oddRows].sort((x, y) => (x.requestId < y.requestId ? -1 : 1));
    const same =
      back.length === odd.length &&
      back.every((r, i) => r.path === sorted[i]!.path && r.detail === sorted[i]!.detail && r.ip === sorted[i]!.ip);
    console.log(`\nround-trip of awkward text through COPY: ${same ? 'exact' : 'DIFFERENT'}`);

    // A COPY the database refuses for its data: does the error reach the caller?
    // (postgres.js 3.4.9 settles the writable only on CommandComplete: after an
    // ErrorResponse it stays pending, until the next statement on the same
    // connection completes and settles it as a success.)
    const bad = [{ ...rows[0]!, requestId: 'refused', actorId: 'not-a-uuid' }];
    const settled = copyBatch(client, bad).then(
      () => 'resolved as if written',
      (err: unknown) => `rejected with SQLSTATE ${dbErrorCode(err)}`,
    );
    const within = (ms: number) =>
      Promise.race([settled, new Promise<string>((r) => setTimeout(() => r(`still pending after ${ms} ms`), ms))]);
    console.log(`COPY refused for its data: ${await within(3_000)}`);
    await client`select 1`;
    const [{ n }] = (await client`select count(*)::int as n from audit_logs where request_id = 'refused'`) as unknown as [{ n: number }];
    console.log(`... after one more statement on that connection: ${await within(1_000)} (rows stored: ${n})`);
  } finally {
    await Promise.all([client.end({ timeout: 1 }), fast.end({ timeout: 1 })]).catch(() => {});
    await dropDatabase(DB_NAME);
  }
}

await main();
