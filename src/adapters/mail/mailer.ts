// The seam to outbound mail. Services hand a Mailer a finished message; which
// Mailer it is (SMTP in production, .eml files for development) is decided
// once, in the deps. Message bodies and links are never logged.

export type MailMessage = {
  to: string;
  subject: string;
  text: string;
  html?: string;
};

/** Where a sent message went: the SMTP server's message id, or the file written. */
export type MailReceipt = { messageId: string; file?: string };

export interface Mailer {
  readonly kind: 'smtp' | 'file';
  /** Send one message (throws when it could not be handed over; callers retry). */
  send(message: MailMessage): Promise<MailReceipt>;
  close(): Promise<void>;
}
