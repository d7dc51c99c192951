// Key rotation of MFA_ENCRYPTION_KEY: with the old key in
// MFA_PREVIOUS_ENCRYPTION_KEYS, every confirmed TOTP secret still sealed under
// it is sealed again under the new key when an instance starts, and on use
// (src/signin/codes.ts); the old key can go once the log says none is left.
import { and, asc, gt, isNotNull } from 'drizzle-orm';
import type { AppServices } from '../../deps.js';
import { totpFactors } from '../../db/schema.js';
import { resealTotpSecret } from '../../signin/codes.js';

const PAGE = 500;

/** One pass over the confirmed TOTP secrets, in pages; logs what it did. A no-op without previous keys. */
export async function resealTotpSecrets(svc: AppServices): Promise<{ resealed: number; unreadable: number }> {
  const counts = { resealed: 0, unreadable: 0 };
  if (svc.secrets.previousKeys === 0) return counts;
  let after: string | undefined;
  for (;;) {
    const rows = await svc.database.db
      .select({ userId: totpFactors.userId, sealed: totpFactors.secretSealed })
      .from(totpFactors)
      .where(and(isNotNull(totpFactors.confirmedAt), after === undefined ? undefined : gt(totpFactors.userId, after)))
      .orderBy(asc(totpFactors.userId))
      .limit(PAGE);
    for (const row of rows) {
      let opened: { plain: string; stale: boolean };
      try {
        opened = svc.secrets.openChecked(row.sealed, row.userId);
      } catch {
        counts.unreadable++;
        continue;
      }
      if (opened.stale && (await resealTotpSecret(svc, row.userId, row.sealed, opened.plain))) counts.resealed++;
    }
    if (rows.length < PAGE) break;
    after = rows.at(-1)!.userId;
  }
  if (counts.unreadable > 0)
    svc.logger.warn(counts, 'TOTP secrets sealed again under MFA_ENCRYPTION_KEY; some open with none of the configured keys');
  else svc.logger.info(counts, 'TOTP secrets sealed again under MFA_ENCRYPTION_KEY; none needs MFA_PREVIOUS_ENCRYPTION_KEYS any more');
  return counts;
}
