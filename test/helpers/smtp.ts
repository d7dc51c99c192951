// A real SMTP server in the test process (smtp-server), and every message it
// receives parsed back with mailparser. It can be stopped and started again on
// the same port, to play an outage between a request and its mail.
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { until } from './eventually.js';

export type Received = { to: string; subject: string; text: string; html: string; parsed: ParsedMail };

export class TestSmtp {
  readonly received: Received[] = [];
  private server: SMTPServer | undefined;
  port = 0;
  /** When set, each message is refused with this SMTP reply code (e.g. 451 temporary, 550 permanent). */
  refuseWith: number | undefined;

  async start(): Promise<this> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (stream, _session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', async () => {
          if (this.refuseWith !== undefined) {
            const err = Object.assign(new Error('refused by the test'), { responseCode: this.refuseWith });
            callback(err);
            return;
          }
          const parsed = await simpleParser(Buffer.concat(chunks));
          this.received.push({
            to: (parsed.to as { text: string } | undefined)?.text ?? '',
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            parsed,
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Stop accepting connections (the port stays this server's for start()). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Messages to this address. */
  to(address: string): Received[] {
    return this.received.filter((m) => m.to === address);
  }

  /** Wait until `count` messages reached this address (or fail after timeoutMs). */
  async waitFor(address: string, count = 1, timeoutMs = 10_000): Promise<Received[]> {
    return until(`${count} mail(s) to ${address}`, () => this.to(address).length >= count && this.to(address), { timeoutMs, everyMs: 25 });
  }
}

/** The token in a mailed link's fragment (`#token=...`). */
export function tokenFrom(mail: Pick<Received, 'text'>): string {
  const m = /#token=([A-Za-z0-9_-]+)/.exec(mail.text);
  if (!m) throw new Error(`no #token= link in: ${mail.text}`);
  return decodeURIComponent(m[1]!);
}
