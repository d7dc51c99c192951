// Outbound mail without SMTP (development): one .eml file per message under
// DATA_DIR/mail/, readable by any mail client, private to the service's user.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { FileMailer } from '../../src/adapters/mail/file-mailer.js';
import { createLogger } from '../../src/lib/logger.js';
import { LogCapture } from '../helpers/app.js';

describe('mail written to files', () => {
  it('writes each message as a private .eml file that a mail parser reads back whole, and logs the file, not the body', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'auth-mail-'));
    const logs = new LogCapture();
    const mailer = new FileMailer(dataDir, 'auth-system <no-reply@example.test>', createLogger('info', logs));
    const link = 'https://auth.example.test/reset-password#token=secret-token-value';
    const first = await mailer.send({
      to: 'ann@example.test',
      subject: 'Reset your password',
      text: `Open ${link}\n`,
      html: `<p><a href="${link}">Reset</a></p>`,
    });
    const second = await mailer.send({ to: 'bob@example.test', subject: 'Ünïcødé subject', text: 'Plain only' });
    expect(readdirSync(join(dataDir, 'mail')).sort()).toHaveLength(2);
    expect(statSync(join(dataDir, 'mail')).mode & 0o777).toBe(0o700);
    for (const r of [first, second]) expect(statSync(r.file!).mode & 0o777).toBe(0o600);

    const parsed = await simpleParser(readFileSync(first.file!));
    expect(parsed.from?.value[0]).toMatchObject({ name: 'auth-system', address: 'no-reply@example.test' });
    expect((parsed.to as { text: string }).text).toBe('ann@example.test');
    expect(parsed.subject).toBe('Reset your password');
    expect(parsed.text).toContain(link);
    expect(parsed.html).toContain(link);
    expect(parsed.messageId).toBe(first.messageId);
    const other = await simpleParser(readFileSync(second.file!));
    expect(other.subject).toBe('Ünïcødé subject');
    expect(other.html).toBe(false);

    expect(logs.text).toContain(first.file!);
    expect(logs.text).not.toContain('secret-token-value');
  });
});
