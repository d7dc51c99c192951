// Production mail: nodemailer over SMTP. `smtp://` upgrades with STARTTLS when
// the server offers it (nodemailer's default on a plain connection), and
// `smtps://` is TLS from the first byte. Credentials live in SMTP_URL and never
// reach a log line.
import nodemailer, { type Transporter } from 'nodemailer';
import type { MailMessage, MailReceipt, Mailer } from './mailer.js';

export type SmtpOptions = {
  url: string;
  from: string;
  /** Each SMTP stage gives up after this (a hung server must not hold a claimed message for ever). */
  timeoutMs?: number;
};

/** An SMTP refusal that will not change on a retry (5xx), as opposed to an outage or a 4xx. */
export class PermanentMailError extends Error {
  constructor(readonly responseCode: number) {
    super(`the SMTP server refused the message permanently (${responseCode})`);
    this.name = 'PermanentMailError';
  }
}

export class SmtpMailer implements Mailer {
  readonly kind = 'smtp' as const;
  private readonly transport: Transporter;

  constructor(private readonly options: SmtpOptions) {
    const timeout = options.timeoutMs ?? 20_000;
    this.transport = nodemailer.createTransport(
      { url: options.url, connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout, logger: false, debug: false },
      { from: options.from },
    );
  }

  async send(message: MailMessage): Promise<MailReceipt> {
    try {
      const info = await this.transport.sendMail({
        from: this.options.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        ...(message.html !== undefined ? { html: message.html } : {}),
      });
      return { messageId: info.messageId };
    } catch (err) {
      const code = (err as { responseCode?: unknown }).responseCode;
      if (typeof code === 'number' && code >= 500 && code < 600) throw new PermanentMailError(code);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
