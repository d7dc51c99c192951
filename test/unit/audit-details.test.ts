// The catalogue of audit details (src/lib/audit-details.ts) and the table of
// them in docs/api.md name the same details, so an operator reading the log
// finds every one explained.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AUDIT_DETAILS, isAuditDetail } from '../../src/lib/audit-details.js';

/** The detail names of the table under "GET /admin/logs" (its first column: `name` or `name: <arg>`, comma- or slash-separated). */
function documented(): string[] {
  const doc = readFileSync('docs/api.md', 'utf8');
  const start = doc.indexOf('| detail | when |');
  expect(start, 'the table of audit details in docs/api.md').toBeGreaterThan(-1);
  const rows = doc.slice(start).split('\n').slice(2);
  const table = rows.slice(
    0,
    rows.findIndex((r) => !r.startsWith('|')),
  );
  return table.flatMap((r) => [...r.split('|')[1]!.matchAll(/`([a-z_]+)(?::[^`]*)?`/g)].map((m) => m[1]!));
}

describe('audit details', () => {
  it('are documented, every one, in docs/api.md', () => {
    expect([...new Set(documented())].sort()).toEqual(Object.keys(AUDIT_DETAILS).sort());
  });

  it('are told apart from anything else when read back', () => {
    for (const ok of [
      'login_failed',
      'permission_denied: posts:delete:any',
      'user_deleted',
      'user_deleted: self',
      'other_sessions_revoked: 3',
    ])
      expect(isAuditDetail(ok), ok).toBe(true);
    for (const bad of [
      'password.reset',
      'mfa.enabled: totp',
      'permission_denied',
      'permission_denied: ',
      'login_failed: x',
      'toString',
      '',
    ])
      expect(isAuditDetail(bad), bad).toBe(false);
  });
});
