// Posts with ownership: anyone with posts:read lists and reads; deleting needs
// posts:delete:own for one's own post or posts:delete:any for anyone's.
import { and, count, eq, sql } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { allPages, newestFirst, olderOrAll, olderThanPlaceholders } from '../../db/keyset.js';
import { preparedQuery } from '../../db/prepared.js';
import { posts } from '../../db/schema.js';
import { cursorOf, pageOf } from '../../lib/keyset-page.js';
import { problem } from '../../lib/problem.js';
import type { Caller } from '../../access/caller.js';
import { can, type Decision, type Permission } from '../../security/permissions.js';
import { postsChanged } from './posts.cache.js';
import type { ExportedPost, Post, PostStats } from './posts.schemas.js';

const toPost = (r: typeof posts.$inferSelect): Post => ({
  id: r.id,
  title: r.title,
  body: r.body,
  authorId: r.authorId,
  createdAt: r.createdAt.toISOString(),
});

// The two shapes of a page, prepared (src/db/prepared.ts): the first page
// (served mostly from posts.cache.ts) and the pages after a cursor.
const firstPage = preparedQuery((db) =>
  db
    .select()
    .from(posts)
    .orderBy(...newestFirst(posts.createdAt, posts.id))
    .limit(sql.placeholder('limit'))
    .prepare('posts_first_page'),
);
const pageAfter = preparedQuery((db) =>
  db
    .select()
    .from(posts)
    .where(olderThanPlaceholders(posts.createdAt, posts.id))
    .orderBy(...newestFirst(posts.createdAt, posts.id))
    .limit(sql.placeholder('limit'))
    .prepare('posts_page_after'),
);

/** For the plan test: the statements behind a page. */
export const pageStatements = { firstPage, pageAfter };

export async function listPosts(svc: AppServices, q: { limit: number; cursor?: string | undefined }) {
  let rows: (typeof posts.$inferSelect)[];
  if (q.cursor !== undefined) {
    const c = cursorOf(q.cursor);
    rows = await pageAfter(svc.database.db).execute({ cursorAt: c.at.toISOString(), cursorId: c.id, limit: q.limit + 1 });
  } else {
    rows = await firstPage(svc.database.db).execute({ limit: q.limit + 1 });
  }
  return pageOf(rows, q.limit, (p) => ({ at: p.createdAt, id: p.id }), toPost);
}

export async function getPost(svc: AppServices, id: string): Promise<Post> {
  const [row] = await svc.database.db.select().from(posts).where(eq(posts.id, id));
  if (!row) problem('not_found', 'No such post');
  return toPost(row);
}

export async function createPost(svc: AppServices, authorId: string, input: { title: string; body: string }): Promise<Post> {
  const [row] = await svc.database.db
    .insert(posts)
    .values({ authorId, title: input.title, body: input.body, createdAt: new Date(svc.clock()) })
    .returning();
  await postsChanged(svc.store);
  return toPost(row!);
}

/**
 * Delete a post: unknown is 404 (checked before ownership), then own/any rules.
 * Returns the decision: the permission that allowed the deletion, or the one
 * that was missing (nothing deleted), for the caller to answer and audit.
 */
export async function deletePost(svc: AppServices, caller: Caller, id: string): Promise<Decision> {
  const [row] = await svc.database.db.select({ authorId: posts.authorId }).from(posts).where(eq(posts.id, id));
  if (!row) problem('not_found', 'No such post');
  const own = caller.kind === 'user' && row.authorId === caller.userId;
  const needed: Permission = own && can(caller.permissions, 'posts:delete:own') ? 'posts:delete:own' : 'posts:delete:any';
  if (!can(caller.permissions, needed)) return { permission: needed, allowed: false };
  // Conditional delete: of concurrent deletions exactly one sees the row. In a
  // retried transaction because a SERIALIZABLE database may refuse even one statement.
  const gone = await svc.tx((tx) => tx.delete(posts).where(eq(posts.id, id)).returning({ id: posts.id }));
  if (gone.length === 0) problem('not_found', 'No such post');
  await postsChanged(svc.store);
  return { permission: needed, allowed: true };
}

/** Every post of one author, newest first, in the export's shape, a page at a time. */
export async function* postsOfAuthor(svc: AppServices, authorId: string): AsyncGenerator<ExportedPost> {
  const rows = allPages(
    (after, size) =>
      svc.database.db
        .select()
        .from(posts)
        .where(and(eq(posts.authorId, authorId), olderOrAll(posts.createdAt, posts.id, after)))
        .orderBy(...newestFirst(posts.createdAt, posts.id))
        .limit(size),
    (p) => ({ at: p.createdAt, id: p.id }),
  );
  for await (const p of rows) yield { id: p.id, title: p.title, body: p.body, createdAt: p.createdAt.toISOString() };
}

/** The posts part of GET /admin/stats. */
export async function postStats(svc: AppServices): Promise<PostStats> {
  const [row] = await svc.database.db.select({ n: count() }).from(posts);
  return { total: Number(row?.n ?? 0) };
}
