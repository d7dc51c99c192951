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
  const app = useTestApp('pglite', {
    config: testConfig({ ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2', LOGIN_MAX_FAILURES: '1000', LOGIN_IP_MAX_FAILURES: '1000' }),
  });
  const { call } = app;

  it('keeps the medians of 20 unknown-email and 20 wrong-password logins within 30%', async () => {
    const s = await registerAndLogin(call);
    const timed = async (email: string) => {
      const start = performance.now();
      const res = await call('POST', '/auth/login', { body: { email, password: 'definitely-wrong-pw' } });
      expect(res.status).toBe(401);
      return performance.now() - start;
    };
    await timed(uniqueEmail()); // warm the dummy hash
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 20; i++) {
      unknown.push(await timed(uniqueEmail('ghost')));
      wrong.push(await timed(s.email));
    }
    const [mu, mw] = [median(unknown), median(wrong)];
    expect(Math.abs(mu - mw) / Math.max(mu, mw), `unknown ${mu.toFixed(1)} ms vs wrong ${mw.toFixed(1)} ms`).toBeLessThan(0.3);
  });
});
