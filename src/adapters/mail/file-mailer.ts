// Development mail: each message becomes an RFC 5322 `.eml` file under
// DATA_DIR/mail/, which any mail client opens. Files and the folder are
// private to the service's user (a message may hold a sign-in link).
import { randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { Logger } from '../../lib/logger.js';
import type { MailMessage, MailReceipt, Mailer } from './mailer.js';

export class FileMailer implements Mailer {
  readonly kind = 'file' as const;
  readonly dir: string;

  constructor(
    dataDir: string,
    private readonly from: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.dir = join(dataDir, 'mail');
  }

  async send(message: MailMessage): Promise<MailReceipt> {
    const id = randomUUID();
    const messageId = `<${id}@auth-system>`;
    const raw = await new MailComposer({
      from: this.from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      ...(message.html !== undefined ? { html: message.html } : {}),
      messageId,
      date: new Date(this.now()),
    })
      .compile()
      .build();
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Sortable by time, unique by id.
    const file = join(this.dir, `${new Date(this.now()).toISOString().replace(/[:.]/g, '-')}-${id}.eml`);
    // Written under another name and renamed: whoever watches the folder never reads half a message.
    const partial = `${file}.part`;
    await writeFile(partial, raw, { mode: 0o600, flag: 'wx' });
    await rename(partial, file);
    // The file, never the body or a link in it.
    this.logger.info({ file, subject: message.subject }, 'mail written to a file (no SMTP_URL)');
    return { messageId, file };
  }

  async close(): Promise<void> {}
}
