// Type-level test (vitest typecheck, run by `npm test`): request bodies, path
// params and response bodies flow from the server's zod schemas into the client.
import { describe, expectTypeOf, it } from 'vitest';
import { createClient } from '../../src/client.js';

const client = createClient('http://localhost:3000');
const { api } = client;

describe('typed client', () => {
  it('types request bodies from the zod schemas', () => {
    expectTypeOf(api.auth.register.$post).parameter(0).toMatchTypeOf<{ json: { email: string; password: string; name: string } }>();
    // @ts-expect-error: `roles` is not a field of the register body
    void api.auth.register.$post({ json: { email: 'a@b.c', password: 'x', name: 'n', roles: ['admin'] } });
    // @ts-expect-error: `title` is required
    void api.posts.$post({ json: { body: 'text only' } });
  });

  it('types path params and rejects unknown paths', () => {
    void api.posts[':id'].$delete({ param: { id: '00000000-0000-4000-8000-000000000000' } });
    // @ts-expect-error: the param is `id`
    void api.posts[':id'].$delete({ param: { postId: 'x' } });
    // @ts-expect-error: there is no /posts/:id/comments route
    void api.posts[':id'].comments.$get();
  });

  it('types response bodies per status', async () => {
    const res = await api.users.me.$get();
    if (res.status === 200) {
      const me = await res.json();
      expectTypeOf(me.permissions).toEqualTypeOf<string[]>();
      expectTypeOf(me.email).toEqualTypeOf<string>();
      // @ts-expect-error: no password hash in a User
      void me.passwordHash;
    }
    const created = await api.posts.$post({ json: { title: 't', body: 'b' } });
    if (created.status === 201) {
      expectTypeOf((await created.json()).authorId).toEqualTypeOf<string>();
    }
    const login = await api.auth.login.$post({ json: { email: 'a@b.c', password: 'p' } });
    if (login.status === 200) {
      expectTypeOf((await login.json()).tokenType).toEqualTypeOf<'Bearer'>();
    }
    const list = await api.posts.$get({ query: { limit: '10' } });
    if (list.status === 200) {
      expectTypeOf((await list.json()).nextCursor).toEqualTypeOf<string | null>();
    }
  });
});
