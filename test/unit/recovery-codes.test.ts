// Recovery codes (docs/api.md "Second factors"): 80 random bits each, written
// as 16 lower-case base32 characters in four groups. A code drawn from fewer
// letters, or with a position that does not vary, looks the same to every other
// test; here 200 sets show every one of the 32 letters in every position.
import { describe, expect, it } from 'vitest';
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from '../../src/security/recovery-codes.js';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

describe('recovery codes', () => {
  it('carry 80 bits each: 16 base32 characters, every one of the 32 letters in every position', () => {
    const codes = Array.from({ length: 200 }, () => newRecoveryCodes().codes).flat();
    expect(codes).toHaveLength(200 * RECOVERY_CODE_COUNT);
    const seen = Array.from({ length: 16 }, () => new Map<string, number>());
    for (const code of codes) {
      expect(code).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
      const plain = code.replace(/-/g, '');
      // 16 characters of 5 bits: 80 bits.
      expect(plain).toHaveLength(16);
      for (const [i, ch] of [...plain].entries()) seen[i]!.set(ch, (seen[i]!.get(ch) ?? 0) + 1);
    }
    // 2,000 codes: each letter is expected 62.5 times per position; missing any by chance: below 1e-25.
    for (const [i, counts] of seen.entries()) expect([...counts.keys()].sort().join(''), `position ${i}`).toBe([...BASE32].sort().join(''));
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('are stored as hashes that their typed forms (any case, spaces, no dashes) match', () => {
    const { codes, hashes } = newRecoveryCodes();
    expect(new Set(hashes).size).toBe(RECOVERY_CODE_COUNT);
    for (const [i, code] of codes.entries()) {
      expect(hashes[i]).not.toContain(code.replace(/-/g, ''));
      const typed = code.toUpperCase().replace(/-/g, ' ');
      expect(hashRecoveryCode(normalizeRecoveryCode(typed)!)).toBe(hashes[i]);
    }
    expect(normalizeRecoveryCode('abcd-efgh-ijkl-mno1')).toBeNull();
    expect(normalizeRecoveryCode('abcd-efgh-ijkl-mno')).toBeNull();
  });
});
