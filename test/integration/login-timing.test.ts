// Wrong email and wrong password cost about the same time (no user enumeration
// by timing), with the production argon2id parameters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, testConfig, type TestApp } from '../helpers/app.js';
import { client, registerAndLogin, uniqueEmail, type Call } from '../helpers/http.js';
import { openDatabase } from '../helpers/services.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
};

describe('login timing', () => {
  let t: TestApp;
  let call: Call;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const db = await openDatabase('pglite');
    dispose = db.dispose;
    // Default (OWASP minimum) argon2id parameters: m=19456 KiB, t=2, p=1.
    t = await createTestApp({
      database: db.database,
      config: testConfig({ ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2', LOGIN_MAX_FAILURES: '1000', LOGIN_IP_MAX_FAILURES: '1000' }),
    });
    call = client(t);
  });
  afterAll(async () => {
    await t.stop();
    await dispose();
  });

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
