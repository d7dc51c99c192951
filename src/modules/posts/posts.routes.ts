// /posts: list, read, write, delete with ownership.
import { Hono } from 'hono';
import type { Runtime } from '../../deps.js';
import type { AppEnv } from '../../middleware/env.js';
import { deny, requirePermission } from '../../middleware/rbac.js';
import { routeMeta } from '../../middleware/route-meta.js';
import { validate } from '../../middleware/validate.js';
import { IdParam } from '../users/users.schemas.js';
import { CreatePostBody, ListPostsQuery, PostListSchema, PostSchema } from './posts.schemas.js';
import { createPost, deletePost, getPost, listPosts } from './posts.service.js';

export const postsRoutes = (rt: Runtime) =>
  new Hono<AppEnv>()
    .get(
      '/',
      routeMeta({ action: 'posts.list', summary: 'List posts, newest first', permission: 'posts:read', tags: ['posts'], responses: { 200: PostListSchema } }),
      requirePermission('posts:read'),
      validate('query', ListPostsQuery),
      async (c) => c.json(await listPosts(rt, c.req.valid('query')), 200),
    )
    .get(
      '/:id',
      routeMeta({ action: 'posts.read', summary: 'Read a post', permission: 'posts:read', tags: ['posts'], responses: { 200: PostSchema }, errors: ['not_found'] }),
      requirePermission('posts:read'),
      validate('param', IdParam),
      async (c) => c.json(await getPost(rt, c.req.valid('param').id), 200),
    )
    .post(
      '/',
      routeMeta({ action: 'posts.create', summary: 'Write a post', permission: 'posts:create', tags: ['posts'], body: true, responses: { 201: PostSchema } }),
      requirePermission('posts:create'),
      validate('json', CreatePostBody),
      async (c) => c.json(await createPost(rt, c.var.caller.userId!, c.req.valid('json')), 201),
    )
    .delete(
      '/:id',
      routeMeta({
        action: 'posts.delete',
        summary: 'Delete a post',
        permission: 'posts:delete:own',
        also: ['posts:delete:any'],
        tags: ['posts'],
        description: 'Own post: posts:delete:own; anyone’s: posts:delete:any. An unknown id is 404 for anyone who may read posts.',
        responses: { 204: null },
        errors: ['not_found'],
      }),
      requirePermission('posts:read'),
      validate('param', IdParam),
      async (c) => {
        const caller = c.var.caller;
        const used = await deletePost(rt, caller, c.req.valid('param').id, (permission) => {
          c.set('decision', { permission, allowed: false });
          return deny(caller, permission);
        });
        c.set('decision', { permission: used, allowed: true });
        return c.body(null, 204);
      },
    );
