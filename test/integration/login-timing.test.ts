// Wrong email and wrong password cost about the same time (no user enumeration
// by timing), with the production argon2id parameters.
import { describe, expect, it } from 'vitest';
import { testConfig } from '../helpers/app.js';
import { registerAndLogin, uniqueEmail } from '../helpers/http.js';
import { useTestApp } from '../helpers/use-app.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
};

describe('login timing', () => {
  // Default (OWASP minimum) argon2id parameters: m=19456 KiB, t=2, p=1.
  // The mail sender stays off (its polls would run during the timed requests).
  const app = useTestApp('pglite', {
    config: testConfig({ ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2', LOGIN_MAX_FAILURES: '1000', LOGIN_IP_MAX_FAILURES: '1000' }),
    app: { mail: { send: false } },
  });
  const { call } = app;

  it('keeps unknown-email and wrong-password logins within 30% of each other (median of 20 adjacent pairs)', async () => {
    const s = await registerAndLogin(call);
    const timed = async (email: string) => {
      const start = performance.now();
      const res = await call('POST', '/auth/login', { body: { email, password: 'definitely-wrong-pw' } });
      expect(res.status).toBe(401);
      return performance.now() - start;
    };
    await timed(uniqueEmail()); // warm the dummy hash
    // Each pair is measured back to back (which goes first alternates), so a slow
    // phase of the shared machine hits both of a pair: the pairs' differences,
    // not two distant medians, say whether the account's existence shows.
    const measure = async () => {
      const diffs: number[] = [];
      const all: number[] = [];
      for (let i = 0; i < 20; i++) {
        let u: number;
        let w: number;
        if (i % 2 === 0) {
          u = await timed(uniqueEmail('ghost'));
          w = await timed(s.email);
        } else {
          w = await timed(s.email);
          u = await timed(uniqueEmail('ghost'));
        }
        diffs.push(u - w);
        all.push(u, w);
      }
      return { diff: median(diffs), typical: median(all) };
    };
    let m = await measure();
    // One second measurement when the first was disturbed: a real difference shows in both.
    if (Math.abs(m.diff) / m.typical >= 0.3) m = await measure();
    expect(Math.abs(m.diff) / m.typical, `unknown − wrong: ${m.diff.toFixed(1)} ms of a typical ${m.typical.toFixed(1)} ms`).toBeLessThan(
      0.3,
    );
  });
});
