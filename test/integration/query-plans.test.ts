// Keyset pages are index range scans, not sorts of the whole table: what keeps
// the first page and a deep page fast with 100k posts or a million audit rows.
import { sql, type SQL } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newestFirst, olderThan } from '../../src/db/keyset.js';
import { encodeCursor } from '../../src/lib/cursor.js';
import { logsPage, pruneBatch, type LogQuery } from '../../src/modules/admin/admin.service.js';
import { pageStatements } from '../../src/modules/posts/posts.service.js';
import { migrate } from '../../src/db/migrate.js';
import { rowsOf } from '../../src/db/rows.js';
import { posts, users } from '../../src/db/schema.js';
import type { Database } from '../../src/db/connect.js';
import { openDatabase } from '../helpers/services.js';

describe('query plans on PostgreSQL', () => {
  let database: Database;
  let dispose: () => Promise<void>;
  const author = '00000000-0000-4000-8000-000000000001';

  beforeAll(async () => {
    const db = await openDatabase('postgres');
    database = db.database;
    dispose = db.dispose;
    const d = database.db;
    await migrate(d);
    await d.execute(sql`insert into users (id, email, name, password_hash) values (${author}, 'plan@example.test', 'p', 'x')`);
    await d.execute(
      sql`insert into users (email, name, password_hash) select 'u' || g || '@x.test', 'n', 'x' from generate_series(1, 5000) g`,
    );
    await d.execute(
      sql`insert into posts (author_id, title, body, created_at) select ${author}, 't', 'b', now() - (g || ' seconds')::interval from generate_series(1, 20000) g`,
    );
    await d.execute(
      sql`insert into audit_logs (at, request_id, actor_id, ip, method, path, route, status, action) select now() - (g || ' ms')::interval, 'r' || g, case when g % 10 = 0 then ${author}::uuid end, '1.2.3.4', 'GET', '/posts', '/posts', case when g % 50 = 0 then 403 else 200 end, case when g % 50 = 0 then 'auth.login' else 'posts.list' end from generate_series(1, 50000) g`,
    );
    await d.execute(sql`analyze`);
  }, 120_000);
  afterAll(async () => {
    await dispose();
  });

  async function plan(query: { toSQL(): { sql: string; params: unknown[] } }): Promise<string> {
    const { sql: text, params } = query.toSQL();
    const inlined = text.replace(/\$(\d+)/g, (_, n) => {
      const v = params[Number(n) - 1];
      return typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`;
    });
    const r = await database.db.execute(sql.raw(`explain ${inlined}`));
    return rowsOf<Record<string, string>>(r)
      .map((row) => row['QUERY PLAN'])
      .join('\n');
  }

  const page = (table: typeof posts | typeof users, where?: SQL) =>
    database.db
      .select()
      .from(table)
      .where(where)
      .orderBy(...newestFirst(table.createdAt, table.id))
      .limit(21);

  it('reads the first and a deep page of posts and users from the index', async () => {
    const cursor = { at: new Date(Date.now() - 10_000 * 1000), id: 'ffffffff-ffff-4fff-bfff-ffffffffffff' };
    for (const q of [
      page(posts),
      page(posts, olderThan(posts.createdAt, posts.id, cursor)),
      page(users),
      page(users, olderThan(users.createdAt, users.id, cursor)),
    ]) {
      const p = await plan(q);
      expect(p).toMatch(/Index Scan using (posts|users)_created_idx/);
      expect(p).not.toMatch(/Sort/);
    }
  });

  it('plans the prepared /posts page statements as index scans even as generic plans', async () => {
    // A prepared statement may be planned once without its values (a generic
    // plan, chosen after five executions or when forced); a LIMIT or cursor the
    // planner cannot see must still not turn the page into a sort.
    const cursorAt = new Date(Date.now() - 10_000 * 1000).toISOString();
    const cases: [{ getQuery(): { sql: string } }, string][] = [
      [pageStatements.firstPage(database.db), '21'],
      [pageStatements.pageAfter(database.db), `'${cursorAt}', 'ffffffff-ffff-4fff-bfff-ffffffffffff', 21`],
    ];
    for (const [statement, args] of cases) {
      const p = await database.db.transaction(async (tx) => {
        await tx.execute(sql.raw('set local plan_cache_mode = force_generic_plan'));
        await tx.execute(sql.raw(`prepare page_plan as ${statement.getQuery().sql}`));
        const r = await tx.execute(sql.raw(`explain execute page_plan(${args})`));
        await tx.execute(sql.raw('deallocate page_plan'));
        return rowsOf<Record<string, string>>(r)
          .map((row) => row['QUERY PLAN'])
          .join('\n');
      });
      expect(p).toMatch(/Index Scan using posts_created_idx/);
      expect(p).not.toMatch(/Sort/);
    }
  });

  it('reads audit pages, filtered or not, backwards along the indexes, without sorting', async () => {
    const cursor = encodeCursor({ at: new Date(Date.now() - 20_000), id: 'ffffffff-ffff-4fff-bfff-ffffffffffff' });
    const queries: [LogQuery, RegExp][] = [
      [{ limit: 20 }, /Index Scan Backward using audit_logs_pkey/],
      [{ limit: 20, cursor }, /Index Scan Backward using audit_logs_pkey/],
      [{ limit: 20, actorId: author }, /Index Scan Backward using audit_actor_time_idx/],
      [{ limit: 20, actorId: author, cursor }, /Index Scan Backward using audit_actor_time_idx/],
      [{ limit: 20, action: 'auth.login' }, /Index Scan Backward using audit_action_time_idx/],
      [{ limit: 20, status: 403 }, /Index Scan Backward using audit_status_time_idx/],
    ];
    for (const [q, index] of queries) {
      const p = await plan(logsPage(database.db, q));
      expect(p, JSON.stringify(q)).toMatch(index);
      expect(p, JSON.stringify(q)).not.toMatch(/Sort/);
    }
  });

  it('prunes old audit rows through the primary key, not a scan of the table', async () => {
    const p = await plan(pruneBatch(database.db, new Date(Date.now() - 49_000), 100));
    expect(p).toMatch(/audit_logs_pkey/);
    expect(p).not.toMatch(/Seq Scan/);
  });
});
