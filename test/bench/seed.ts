// Seeds a bench database for scenario 5 (scale): users (each with the `user`
// role), posts and audit-log rows, in batched multi-row INSERTs through the
// `postgres` package. The database must already have the service's schema and
// built-in roles (start the service on it once; `npm run bench` does).
//
//   npm run bench:seed -- --database-url postgres://postgres@127.0.0.1:5432/bench_x \
//     [--users 100000] [--posts 100000] [--audit 1000000]
//
// Every seeded user shares one real argon2id hash (of BENCH_PASSWORD, with the
// ARGON2_* parameters), so any of them can sign in. Rows are dated in the past
// (users and posts over a year, audit rows over the last 30 days, inside the
// default 90-day retention), so what the bench itself writes is the newest.
import { randomBytes, randomUUID } from 'node:crypto';
import { hash } from '@node-rs/argon2';
import postgres from 'postgres';

export type SeedCounts = { users: number; posts: number; audit: number };
export const FULL_SCALE: SeedCounts = { users: 100_000, posts: 100_000, audit: 1_000_000 };
export const SEED_PASSWORD = process.env.BENCH_PASSWORD ?? 'bench user password 1234';

const BATCH = 5_000; // 10 columns x 5000 rows stays under PostgreSQL's 65535 parameters
const DAY = 86_400_000;

// Weighted like a service's real traffic: mostly reads, some failures and denials.
const AUDIT_KINDS: {
  w: number;
  method: string;
  path: string;
  route: string;
  status: number;
  action: string;
  detail: string | null;
  actor: boolean;
}[] = [
  { w: 40, method: 'GET', path: '/users/me', route: '/users/me', status: 200, action: 'users.me.read', detail: null, actor: true },
  { w: 30, method: 'GET', path: '/posts', route: '/posts', status: 200, action: 'posts.list', detail: null, actor: false },
  { w: 8, method: 'POST', path: '/auth/login', route: '/auth/login', status: 200, action: 'auth.login', detail: null, actor: true },
  {
    w: 3,
    method: 'POST',
    path: '/auth/login',
    route: '/auth/login',
    status: 401,
    action: 'auth.login',
    detail: 'login_failed',
    actor: false,
  },
  { w: 6, method: 'POST', path: '/auth/refresh', route: '/auth/refresh', status: 200, action: 'auth.refresh', detail: null, actor: false },
  { w: 5, method: 'POST', path: '/posts', route: '/posts', status: 201, action: 'posts.create', detail: null, actor: true },
  {
    w: 2,
    method: 'DELETE',
    path: '/posts/:id',
    route: '/posts/:id',
    status: 403,
    action: 'posts.delete',
    detail: 'permission_denied: posts:delete:any',
    actor: true,
  },
  {
    w: 2,
    method: 'GET',
    path: '/users/me',
    route: '/users/me',
    status: 401,
    action: 'users.me.read',
    detail: 'invalid_token',
    actor: false,
  },
  {
    w: 2,
    method: 'GET',
    path: '/admin/logs',
    route: '/admin/logs',
    status: 403,
    action: 'admin.logs.read',
    detail: 'permission_denied: admin:logs:read',
    actor: true,
  },
  { w: 2, method: 'GET', path: '/nope', route: '-', status: 404, action: 'unknown', detail: null, actor: false },
];
const KIND_TABLE = AUDIT_KINDS.flatMap((k) => Array.from({ length: k.w }, () => k));

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

async function inBatches(total: number, make: (from: number, to: number) => Promise<void>, label: string, log: (s: string) => void) {
  const started = Date.now();
  let next = 0;
  let done = 0;
  // Two batches in flight: one being built in JS while the other is inserted.
  const worker = async () => {
    while (next < total) {
      const from = next;
      const to = Math.min(total, from + BATCH);
      next = to;
      await make(from, to);
      done += to - from;
      if (done % 100_000 < BATCH || done === total) log(`  ${label}: ${done}/${total} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
  };
  await Promise.all([worker(), worker()]);
}

export async function seed(url: string, counts: SeedCounts, log: (s: string) => void = console.log): Promise<void> {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    const [role] = await sql`select name from roles where name = 'user'`;
    if (!role)
      throw new Error('the database has no `user` role: start the service on it once (migrations and built-in roles) before seeding');
    const passwordHash = await hash(SEED_PASSWORD.normalize('NFKC'), {
      memoryCost: Number(process.env.ARGON2_MEMORY_KIB ?? 19_456),
      timeCost: Number(process.env.ARGON2_TIME_COST ?? 2),
      parallelism: Number(process.env.ARGON2_PARALLELISM ?? 1),
      algorithm: 2,
    });
    const now = Date.now();
    const tag = randomBytes(3).toString('hex'); // several seedings of one database do not collide on email
    const userIds: string[] = Array.from({ length: counts.users }, () => randomUUID());

    log(`seeding ${counts.users} users, ${counts.posts} posts, ${counts.audit} audit rows`);
    await inBatches(
      counts.users,
      async (from, to) => {
        const rows = [];
        for (let i = from; i < to; i++) {
          const created = new Date(now - 365 * DAY + Math.floor((i / counts.users) * 364 * DAY));
          rows.push({
            id: userIds[i]!,
            email: `seed-${tag}-${i}@bench.test`,
            name: `Seeded User ${i}`,
            password_hash: passwordHash,
            created_at: created,
            updated_at: created,
          });
        }
        await sql`insert into users ${sql(rows)}`;
        await sql`insert into user_roles ${sql(rows.map((r) => ({ user_id: r.id, role_name: 'user' })))}`;
      },
      'users',
      log,
    );

    const body = 'Seeded post body. '.repeat(12).trim();
    await inBatches(
      counts.posts,
      async (from, to) => {
        const rows = [];
        for (let i = from; i < to; i++) {
          rows.push({
            id: randomUUID(),
            author_id: userIds.length ? pick(userIds) : null,
            title: `Seeded post ${i}`,
            body,
            created_at: new Date(now - 365 * DAY + Math.floor((i / counts.posts) * 364 * DAY)),
          });
        }
        if (rows.some((r) => r.author_id === null)) throw new Error('posts need users to author them');
        await sql`insert into posts ${sql(rows)}`;
      },
      'posts',
      log,
    );

    await inBatches(
      counts.audit,
      async (from, to) => {
        const rows = [];
        for (let i = from; i < to; i++) {
          const k = pick(KIND_TABLE);
          rows.push({
            at: new Date(now - 30 * DAY + Math.floor((i / counts.audit) * 29 * DAY)),
            request_id: randomBytes(8).toString('hex'),
            actor_id: k.actor && userIds.length ? pick(userIds) : null,
            ip: `10.${i % 256}.${(i >> 8) % 256}.${(i >> 16) % 256}`,
            method: k.method,
            path: k.path,
            route: k.route,
            status: k.status,
            action: k.action,
            detail: k.detail,
          });
        }
        await sql`insert into audit_logs ${sql(rows)}`;
      },
      'audit_logs',
      log,
    );
    // A database in service has been vacuumed: visibility map and hint bits set,
    // statistics current. Without this the first queries of a measured run pay
    // for setting hint bits, and autovacuum starts in the middle of it.
    log('  vacuum analyze');
    for (const t of ['users', 'user_roles', 'posts', 'audit_logs']) await sql`vacuum (analyze) ${sql(t)}`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1]?.endsWith('seed.ts')) {
  const args = process.argv.slice(2);
  const url = argValue(args, '--database-url') ?? process.env.DATABASE_URL;
  if (!url) {
    console.error('usage: npm run bench:seed -- --database-url postgres://… [--users N] [--posts N] [--audit N]');
    process.exit(2);
  }
  const n = (name: string, dflt: number) => Number(argValue(args, name) ?? dflt);
  const started = Date.now();
  await seed(url, { users: n('--users', FULL_SCALE.users), posts: n('--posts', FULL_SCALE.posts), audit: n('--audit', FULL_SCALE.audit) });
  console.log(`seeded in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
