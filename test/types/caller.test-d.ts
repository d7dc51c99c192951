// Type-level test (vitest typecheck, run by `npm test`): a route's declaration
// narrows the caller its handler sees. Behind a user permission the handler gets
// a signed-in user (no `userId!`); a route anyone may call gets any caller.
import { Hono } from 'hono';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { AppEnv } from '../../src/middleware/app-env.js';
import { declareRoute } from '../../src/middleware/route-meta.js';
import { validate } from '../../src/middleware/validate.js';
import type { Caller, UserCaller } from '../../src/access/caller.js';

const base = { summary: 's', tags: ['t'], responses: { 204: null } };

describe('a route declaration narrows the caller', () => {
  it('behind a user permission: a signed-in user, through the validators too', () => {
    new Hono<AppEnv>().put(
      '/me',
      declareRoute({ ...base, action: 'me.update', permission: 'profile:update', body: true }),
      validate('json', z.object({ name: z.string() })),
      (c) => {
        const caller = c.get('caller');
        expectTypeOf(caller).toEqualTypeOf<UserCaller>();
        expectTypeOf(caller.userId).toEqualTypeOf<string>();
        expectTypeOf(caller.sessionId).toEqualTypeOf<string>();
        return c.body(null, 204);
      },
    );
  });

  it('open to anyone (a guest permission, or none): any caller, and no userId without asking its kind', () => {
    new Hono<AppEnv>()
      .get('/posts', declareRoute({ ...base, action: 'posts.list', permission: 'posts:read' }), (c) => {
        const caller = c.get('caller');
        expectTypeOf(caller).toEqualTypeOf<Caller>();
        // @ts-expect-error: an anonymous caller has no userId
        void caller.userId;
        if (caller.kind === 'user') expectTypeOf(caller.userId).toEqualTypeOf<string>();
        return c.body(null, 204);
      })
      .post('/login', declareRoute({ ...base, action: 'auth.login' }), (c) => {
        expectTypeOf(c.get('caller')).toEqualTypeOf<Caller>();
        return c.body(null, 204);
      });
  });

  it('a guard decides, not the documented permission', () => {
    new Hono<AppEnv>()
      // DELETE /posts/:id checks posts:read up front; its handler judges own or any.
      .delete('/posts/:id', declareRoute({ ...base, action: 'posts.delete', permission: 'posts:delete:own', guard: 'posts:read' }), (c) => {
        expectTypeOf(c.get('caller')).toEqualTypeOf<Caller>();
        return c.body(null, 204);
      })
      // POST /auth/refresh judges the refresh token's user, not the caller.
      .post('/refresh', declareRoute({ ...base, action: 'auth.refresh', permission: 'auth:refresh', guard: null }), (c) => {
        expectTypeOf(c.get('caller')).toEqualTypeOf<Caller>();
        return c.body(null, 204);
      });
  });

  it('without a declaration, the app’s Env: any caller', () => {
    new Hono<AppEnv>().get('/x', (c) => {
      expectTypeOf(c.get('caller')).toEqualTypeOf<Caller>();
      return c.body(null, 204);
    });
  });
});
