// /posts: list, read, write, delete with ownership.
import { Hono, type TypedResponse } from 'hono';
import type { AppServices } from '../../deps.js';
import type { AppEnv } from '../../middleware/app-env.js';
import { deny } from '../../middleware/rbac.js';
import { declareRoute } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { IdParam } from '../../lib/schemas.js';
import { ensurePostsVersion, FirstPageCache, postsChanged, postsVersionRead } from './posts.cache.js';
import {
  CreatePostBody,
  ExportedPostSchema,
  ListPostsQuery,
  PostListSchema,
  PostSchema,
  PostStatsSchema,
  type PostList,
  type PostStats,
} from './posts.schemas.js';
import { createPost, deletePost, getPost, listPosts, postStats, postsOfAuthor } from './posts.service.js';

// The posts part of GET /admin/stats, typed for the typed client.
declare module '../../lib/contributions.js' {
  interface StatsSections {
    posts: PostStats;
  }
}

const JSON_TYPE = { 'Content-Type': 'application/json' };

export const postsRoutes = (svc: AppServices) => {
  const firstPages = new FirstPageCache(svc.clock);
  svc.background.run('posts version', () => ensurePostsVersion(svc.store));
  // A deleted user's posts go with them (by cascade): the first page changes.
  svc.events.react(async (events) => {
    if (events.some((e) => e.type === 'user.deleted')) await postsChanged(svc.store);
  });
  // One's posts in the account export (after sessions), the total in GET /admin/stats (after roles).
  svc.contributions.registerOnce('posts', (c) => {
    c.addExportSection({ name: 'posts', item: ExportedPostSchema, rows: (userId) => postsOfAuthor(svc, userId) });
    c.addStats({ name: 'posts', schema: PostStatsSchema, read: () => postStats(svc) });
  });
  return new Hono<AppEnv>()
    .get(
      '/',
      declareRoute({
        action: 'posts.list',
        summary: 'List posts, newest first',
        permission: 'posts:read',
        tags: ['posts'],
        responses: { 200: PostListSchema },
        storeReads: [postsVersionRead],
      }),
      validate('query', ListPostsQuery),
      async (c) => {
        const q = c.req.valid('query');
        const version = q.cursor === undefined ? (c.get('storeValues')[postsVersionRead.name] ?? null) : null;
        let json = version === null ? undefined : firstPages.get(q.limit, version);
        if (json === undefined) {
          json = JSON.stringify(await listPosts(svc, q));
          if (version !== null) firstPages.set(q.limit, version, json);
        }
        // Sent as built (the cached string is the serialized page), typed for the RPC client.
        return c.body(json, 200, JSON_TYPE) as unknown as Response & TypedResponse<PostList, 200, 'json'>;
      },
    )
    .get(
      '/:id',
      declareRoute({
        action: 'posts.read',
        summary: 'Read a post',
        permission: 'posts:read',
        tags: ['posts'],
        responses: { 200: PostSchema },
        errors: ['not_found'],
      }),
      validate('param', IdParam),
      async (c) => c.json(await getPost(svc, c.req.valid('param').id), 200),
    )
    .post(
      '/',
      declareRoute({
        action: 'posts.create',
        summary: 'Write a post',
        permission: 'posts:create',
        tags: ['posts'],
        body: true,
        responses: { 201: PostSchema },
      }),
      validate('json', CreatePostBody),
      async (c) => c.json(await createPost(svc, c.get('caller').userId, c.req.valid('json')), 201),
    )
    .delete(
      '/:id',
      declareRoute({
        action: 'posts.delete',
        summary: 'Delete a post',
        body: true,
        permission: 'posts:delete:own',
        also: ['posts:delete:any'],
        // 404 comes before ownership for anyone who may read posts; the handler decides the rest.
        guard: 'posts:read',
        tags: ['posts'],
        description: 'Own post: posts:delete:own; anyone’s: posts:delete:any. An unknown id is 404 for anyone who may read posts.',
        responses: { 204: null },
        errors: ['not_found'],
      }),
      validate('param', IdParam),
      async (c) => {
        const caller = c.get('caller');
        const decision = await deletePost(svc, caller, c.req.valid('param').id);
        c.set('decision', decision);
        if (!decision.allowed) deny(caller, decision.permission);
        return c.body(null, 204);
      },
    );
};
