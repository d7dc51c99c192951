// The mail outbox (docs/api.md "Mail"): a mail commits with the change that
// causes it and is sent off the request path, against a real SMTP server in
// this process. An SMTP outage, a restart between request and send, and two
// instances over one database lose no message and send none twice.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { simpleParser } from 'mailparser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueMail } from '../../src/adapters/mail/outbox.js';
import { mailOutbox } from '../../src/db/schema.js';
import { createTestApp, testConfig, type TestApp } from '../helpers/app.js';
import { until } from '../helpers/eventually.js';
import { client, PASSWORD, registerAndLogin, typed, uniqueEmail } from '../helpers/http.js';
import { BACKENDS, openDatabase } from '../helpers/services.js';
import { TestSmtp, tokenFrom } from '../helpers/smtp.js';
import { useTestApp } from '../helpers/use-app.js';

const FAST_MAIL = { pollMs: 50, baseBackoffMs: 50, maxBackoffMs: 200 };

describe.each(BACKENDS)('the mail outbox on %s', (backend) => {
  const smtp = new TestSmtp();
  let db: Awaited<ReturnType<typeof openDatabase>>;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    await smtp.start();
    db = await openDatabase(backend);
  });
  afterEach(async () => {
    smtp.refuseWith = undefined;
    if (!smtp.running) await smtp.start();
    await Promise.all(apps.splice(0).map((a) => a.stop()));
  });
  afterAll(async () => {
    await smtp.stop();
    await db.dispose();
  });

  const instance = async (opts: { send?: boolean; clock?: () => number } = {}) => {
    const a = await createTestApp({
      database: db.database,
      config: testConfig({ SMTP_URL: smtp.url }),
      app: { mail: { ...FAST_MAIL, send: opts.send ?? true } },
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    apps.push(a);
    return a;
  };
  const register = async (a: TestApp, email: string) => {
    const res = await typed(a).api.auth.register.$post({ json: { email, password: PASSWORD, name: 'A' } });
    expect(res.status).toBe(201);
    await a.services.background.idle();
  };
  const forgot = async (a: TestApp, email: string) => {
    expect((await typed(a).forgotPassword(email)).status).toBe(202);
    // The reset mail is queued after the answer.
    await a.services.background.idle();
  };
  const outboxTo = (email: string) => db.database.db.select().from(mailOutbox).where(eq(mailOutbox.toAddress, email));
  /** Every row to this address went out: sent, body gone. */
  const allSent = async (email: string) => {
    const rows = await outboxTo(email);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r).toMatchObject({ textBody: null, htmlBody: null, failedAt: null, lastError: null });
    expect(rows.every((r) => r.sentAt !== null)).toBe(true);
  };

  it('keeps a forgot-password mail through an SMTP outage and delivers it once when the server is back', async () => {
    const a = await instance();
    const email = uniqueEmail();
    await register(a, email);
    await a.services.outbox.idle();
    expect(smtp.to(email)).toHaveLength(1);
    await smtp.stop();
    await forgot(a, email);
    // Retried while the server is down, with the reason recorded (never the body).
    const row = await until('two failed attempts', async () => {
      const rows = (await outboxTo(email)).filter((r) => r.kind === 'reset_password');
      return rows[0] && rows[0].attempts >= 2 && rows[0].sentAt === null ? rows[0] : undefined;
    });
    // Connection refused: nodemailer's socket error code, never the server's text.
    expect(row.lastError).toBe('ESOCKET');
    expect(row.textBody).toContain('#token=');
    await smtp.start();
    // The retry comes with the sender's own backoff; then nothing is left to send.
    await smtp.waitFor(email, 2);
    await a.services.outbox.idle();
    const mails = smtp.to(email);
    expect(mails).toHaveLength(2);
    expect(mails[1]!.subject).toMatch(/reset/i);
    await allSent(email);
    expect(a.logs.text).toContain('mail not sent yet; will retry');
    expect(a.logs.text).not.toContain(tokenFrom(mails[1]!));
  });

  it('loses nothing when the instance stops between the request and the send: the next one sends it, once', async () => {
    const first = await instance({ send: false });
    const s = await registerAndLogin(client(first));
    expect((await typed(first).forgotPassword(s.email)).status).toBe(202);
    await first.stop();
    apps.splice(apps.indexOf(first), 1);
    expect(await outboxTo(s.email)).toHaveLength(2);
    expect(smtp.to(s.email)).toHaveLength(0);
    const next = await instance();
    await next.services.outbox.idle();
    expect(smtp.to(s.email)).toHaveLength(2);
    await allSent(s.email);
  });

  it('never sends the mail still queued for an account deleted before it went out (a reset link included)', async () => {
    const first = await instance({ send: false });
    const s = await registerAndLogin(client(first));
    await forgot(first, s.email);
    expect((await outboxTo(s.email)).map((r) => r.kind)).toContain('reset_password');
    const gone = await typed(first, s).deleteAccount(PASSWORD);
    expect(gone.status, await gone.text()).toBe(204);
    expect(await outboxTo(s.email)).toHaveLength(0);
    // A sender starts: a mail queued after them is delivered, and nothing reaches the deleted account's address.
    const sender = await instance();
    const later = uniqueEmail('later');
    await register(sender, later);
    await sender.services.outbox.idle();
    expect(smtp.to(later)).toHaveLength(1);
    expect(smtp.to(s.email)).toHaveLength(0);
  });

  it('retries a temporary refusal (451) and abandons a permanent one (550) without sending it again', async () => {
    const a = await instance();
    const later = uniqueEmail('later');
    const never = uniqueEmail('never');
    smtp.refuseWith = 451;
    await register(a, later);
    await until('a retried message', async () => ((await outboxTo(later))[0]?.attempts ?? 0) >= 2);
    expect((await outboxTo(later))[0]!.lastError).toBe('smtp 451');
    smtp.refuseWith = undefined;
    await smtp.waitFor(later);
    smtp.refuseWith = 550;
    await register(a, never);
    await a.services.outbox.idle();
    const [abandoned] = await outboxTo(never);
    expect(abandoned).toMatchObject({ lastError: 'smtp 550', textBody: null, htmlBody: null, sentAt: null, attempts: 1 });
    expect(abandoned!.failedAt).not.toBeNull();
    smtp.refuseWith = undefined;
    // Nothing is due any more: an abandoned message is not taken up again.
    await a.services.outbox.idle();
    expect(smtp.to(never)).toHaveLength(0);
    expect(smtp.to(later)).toHaveLength(1);
    expect((await outboxTo(never))[0]).toMatchObject({ attempts: 1, sentAt: null });
  });

  it('does not send a message whose link expired while it waited', async () => {
    let skew = 0;
    const first = await instance({ send: false, clock: () => Date.now() + skew });
    const email = uniqueEmail();
    await register(first, email);
    skew = 86_400_000 + 60_000;
    const later = await instance({ clock: () => Date.now() + skew });
    await later.services.outbox.idle();
    const [row] = await outboxTo(email);
    expect(row).toMatchObject({ lastError: 'expired', textBody: null, sentAt: null });
    expect(row!.failedAt).not.toBeNull();
    await later.services.outbox.idle();
    expect(smtp.to(email)).toHaveLength(0);
  });

  it.runIf(backend === 'postgres')('sends each message once when two instances share the outbox', async () => {
    const [a, b] = [await instance({ send: false }), await instance({ send: false })];
    const addresses = Array.from({ length: 60 }, () => uniqueEmail('pair'));
    const now = new Date();
    await db.database.db.transaction(async (tx) => {
      for (const to of addresses) {
        await enqueueMail(
          tx,
          { to, subject: 'Both instances', text: 'hello', kind: 'email_changed', expiresAt: new Date(now.getTime() + 3600_000) },
          now,
        );
      }
    });
    // Both senders start on the same due rows at once.
    a.services.outbox.start();
    b.services.outbox.start();
    for (const to of addresses) await smtp.waitFor(to, 1, 20_000);
    // Neither has anything left to send, nor a batch in flight.
    await Promise.all([a.services.outbox.idle(), b.services.outbox.idle()]);
    for (const to of addresses) expect(smtp.to(to), to).toHaveLength(1);
    const rows = await db.database.db.select().from(mailOutbox).where(eq(mailOutbox.subject, 'Both instances'));
    expect(rows.every((r) => r.sentAt !== null && r.attempts === 1)).toBe(true);
  });
});

describe('forgot-password timing', () => {
  // The sender stays off: its polling and SMTP sends would run during the
  // timed requests and add noise that has nothing to do with the account.
  const app = useTestApp('pglite', () => ({
    overrides: { SMTP_URL: 'smtp://127.0.0.1:9', MAIL_PER_ADDRESS_PER_HOUR: '1000', ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2' },
    app: { mail: { ...FAST_MAIL, send: false } },
  }));
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
  };

  it('keeps the medians of 20 known-account and 20 unknown-address requests within 30% (or 1 ms)', async () => {
    const s = await registerAndLogin(app.call);
    const timed = async (email: string) => {
      // Whatever the previous request left to do after its response is done first.
      await app.t.services.background.idle();
      const start = performance.now();
      const res = await app.call('POST', '/auth/password/forgot', { body: { email } });
      const ms = performance.now() - start;
      expect(res.status).toBe(202);
      return ms;
    };
    await timed(uniqueEmail());
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 20; i++) {
      // Alternate which goes first, so a slow phase of the machine hits both.
      if (i % 2 === 0) {
        known.push(await timed(s.email));
        unknown.push(await timed(uniqueEmail('ghost')));
      } else {
        unknown.push(await timed(uniqueEmail('ghost')));
        known.push(await timed(s.email));
      }
    }
    await app.t.services.background.idle();
    const [mk, mu] = [median(known), median(unknown)];
    expect(Math.abs(mk - mu), `known ${mk.toFixed(2)} ms vs unknown ${mu.toFixed(2)} ms`).toBeLessThanOrEqual(
      Math.max(0.3 * Math.max(mk, mu), 1),
    );
    // The known account really got its 20 mails queued (after the responses).
    const rows = await app.t.services.database.db.select().from(mailOutbox).where(eq(mailOutbox.toAddress, s.email));
    expect(rows.filter((r) => r.kind === 'reset_password')).toHaveLength(20);
  });
});

describe('mail without SMTP_URL (development)', () => {
  const app = useTestApp('pglite', { app: { mail: FAST_MAIL } });

  it('writes each message as an .eml file under DATA_DIR/mail and logs the file, never the link', async () => {
    const s = await registerAndLogin(app.call);
    expect((await typed(app.t).forgotPassword(s.email)).status).toBe(202);
    await app.t.services.background.idle();
    await app.t.services.outbox.idle();
    const dir = join(app.t.deps.config.dataDir, 'mail');
    const files = readdirSync(dir).filter((n) => n.endsWith('.eml'));
    expect(files).toHaveLength(2);
    const parsed = await Promise.all(files.map((f) => simpleParser(readFileSync(join(dir, f)))));
    const reset = parsed.find((m) => /reset/i.test(m.subject ?? ''))!;
    expect((reset.to as { text: string }).text).toBe(s.email);
    const token = tokenFrom({ text: reset.text ?? '' });
    for (const f of files) expect(app.t.logs.text).toContain(f);
    expect(app.t.logs.text).not.toContain(token);
  });
});
