// Type-level test (vitest typecheck, run by `npm test`): a handler or a
// problem() can write only a detail of the catalogue (src/lib/audit-details.ts),
// in its form; free text, the old dotted spelling or a missing argument do not compile.
import { Hono } from 'hono';
import { describe, expectTypeOf, it } from 'vitest';
import type { AuditDetail } from '../../src/lib/audit-details.js';
import { problem } from '../../src/lib/problem.js';
import type { AppEnv } from '../../src/middleware/app-env.js';

describe('audit details come from the catalogue', () => {
  it('accepts its names, bare or with the argument it takes', () => {
    expectTypeOf<'login_failed'>().toExtend<AuditDetail>();
    expectTypeOf<'permission_denied: posts:delete:any'>().toExtend<AuditDetail>();
    expectTypeOf<'mfa_enabled: totp'>().toExtend<AuditDetail>();
    expectTypeOf<`other_sessions_revoked: ${number}`>().toExtend<AuditDetail>();
    expectTypeOf<'user_deleted'>().toExtend<AuditDetail>();
    expectTypeOf<'user_deleted: self'>().toExtend<AuditDetail>();
  });

  it('refuses anything else', () => {
    expectTypeOf<'password.reset'>().not.toExtend<AuditDetail>();
    expectTypeOf<'something happened'>().not.toExtend<AuditDetail>();
    // A detail that takes an argument is not written bare, nor one that takes none with one.
    expectTypeOf<'permission_denied'>().not.toExtend<AuditDetail>();
    expectTypeOf<'login_failed: twice'>().not.toExtend<AuditDetail>();
    expectTypeOf<'mfa_enabled: sms'>().not.toExtend<AuditDetail>();
  });

  it('is what auditDetail and problem() take', () => {
    new Hono<AppEnv>().get('/x', (c) => {
      c.set('auditDetail', 'password_reset');
      // @ts-expect-error: the dotted spelling is gone
      c.set('auditDetail', 'password.reset');
      return c.body(null, 204);
    });
    const fail = () => {
      // @ts-expect-error: free text
      problem('forbidden', 'no', { audit: 'not allowed' });
    };
    void fail;
  });
});
