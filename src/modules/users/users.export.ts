// GET /users/me/export: everything the service holds about the caller, as one
// JSON document produced piece by piece (sessions, audit entries and the lists
// other modules register in svc.contributions, in keyset pages),
// so a user with many rows is never loaded into memory at once.
// Never a hash, token or secret: sessions without their refresh tokens, mailed
// links as their kind and dates only.
import { and, eq, gte } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { auditLogs, emailTokens, passkeys, recoveryCodes, sessions, totpFactors, users } from '../../db/schema.js';
import { allPages, newestFirst, newestFirstBackward, olderOrAll } from '../../db/keyset.js';
import { problem } from '../../lib/problem.js';
import { rolesOf, toUser } from './users.view.js';

/** The document's text, in chunks. Throws not_found before the first chunk if the user is gone. */
export async function exportAccount(svc: AppServices, userId: string): Promise<AsyncGenerator<string>> {
  const db = svc.database.db;
  const sections = svc.contributions.exportSections;
  const [row] = await db.select().from(users).where(eq(users.id, userId));
  if (!row) problem('not_found', 'No such user');
  const roles = (await rolesOf(db, [userId])).get(userId) ?? [];
  const now = new Date(svc.clock());
  const auditSince = new Date(now.getTime() - svc.config.audit.retentionDays * 86_400_000);

  async function* list<R, T>(name: string, rows: AsyncIterable<R>, view: (r: R) => T, first = false): AsyncGenerator<string> {
    yield `${first ? '' : ','}\n  ${JSON.stringify(name)}: [`;
    let n = 0;
    for await (const r of rows) yield `${n++ === 0 ? '' : ','}\n    ${JSON.stringify(view(r))}`;
    yield n === 0 ? ']' : '\n  ]';
  }

  // Names and dates only: never a secret, code hash or public key.
  async function factorsOf() {
    const [totp] = await db
      .select({ confirmedAt: totpFactors.confirmedAt, createdAt: totpFactors.createdAt })
      .from(totpFactors)
      .where(eq(totpFactors.userId, userId));
    const keys = await db
      .select({ id: passkeys.id, name: passkeys.name, createdAt: passkeys.createdAt, lastUsedAt: passkeys.lastUsedAt })
      .from(passkeys)
      .where(eq(passkeys.userId, userId));
    const codes = await db
      .select({ createdAt: recoveryCodes.createdAt, usedAt: recoveryCodes.usedAt })
      .from(recoveryCodes)
      .where(eq(recoveryCodes.userId, userId));
    return {
      totp: totp ? { enabled: totp.confirmedAt !== null, enabledAt: totp.confirmedAt, createdAt: totp.createdAt } : null,
      passkeys: keys,
      recoveryCodes: codes.length ? { createdAt: codes[0]!.createdAt, remaining: codes.filter((c) => c.usedAt === null).length } : null,
    };
  }

  async function* document(): AsyncGenerator<string> {
    const head = {
      format: 'auth-system account export, version 1',
      exportedAt: now.toISOString(),
      profile: toUser(row!, roles),
      roles: [...roles].sort(),
      factors: await factorsOf(),
    };
    yield `{\n${Object.entries(head)
      .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
      .join(',\n')}`;
    const tokens = await db
      .select({ kind: emailTokens.kind, email: emailTokens.email, createdAt: emailTokens.createdAt, expiresAt: emailTokens.expiresAt })
      .from(emailTokens)
      .where(eq(emailTokens.userId, userId));
    yield `,\n  "pendingEmailLinks": ${JSON.stringify(tokens)}`;
    yield* list(
      'sessions',
      allPages(
        (after, size) =>
          db
            .select()
            .from(sessions)
            .where(and(eq(sessions.userId, userId), olderOrAll(sessions.createdAt, sessions.id, after)))
            .orderBy(...newestFirst(sessions.createdAt, sessions.id))
            .limit(size),
        (s) => ({ at: s.createdAt, id: s.id }),
      ),
      (s) => ({
        id: s.id,
        createdAt: s.createdAt.toISOString(),
        lastRefreshedAt: s.lastRefreshedAt?.toISOString() ?? null,
        expiresAt: s.expiresAt.toISOString(),
        endedAt: s.revokedAt?.toISOString() ?? null,
        endedBecause: s.revokedReason,
        ip: s.ip,
        userAgent: s.userAgent,
      }),
    );
    for (const section of sections) yield* list(section.name, section.rows(userId), (r) => r);
    yield* list(
      'auditLog',
      allPages(
        (after, size) =>
          db
            .select()
            .from(auditLogs)
            .where(and(eq(auditLogs.actorId, userId), gte(auditLogs.at, auditSince), olderOrAll(auditLogs.at, auditLogs.id, after)))
            .orderBy(...newestFirstBackward(auditLogs.at, auditLogs.id))
            .limit(size),
        (e) => ({ at: e.at, id: e.id }),
      ),
      (e) => ({
        id: e.id,
        at: e.at.toISOString(),
        requestId: e.requestId,
        ip: e.ip,
        method: e.method,
        path: e.path,
        status: e.status,
        action: e.action,
        detail: e.detail,
      }),
    );
    yield '\n}\n';
  }
  return document();
}
