// The mail channel of the events. A mail is a row in the mail outbox (which
// keeps its retry state: src/adapters/mail/outbox.ts) written in the same
// transaction as its mail.requested event; the event's relay, right after the
// commit or later from the event outbox, wakes the mail sender.
import { enqueueMail, type OutboxMessage } from '../adapters/mail/outbox.js';
import type { Tx } from '../db/tx.js';
import type { DomainEvent } from './events.js';
import type { Emit } from './outbox.js';

/** Inside a state change's transaction: the mail row and its event. */
export async function requestMail(tx: Tx, emit: Emit, message: OutboxMessage, now: Date): Promise<void> {
  await enqueueMail(tx, message, now);
  await emit({ type: 'mail.requested', kind: message.kind });
}

/** Wake the sender when the events asked for mail (a sender not started leaves it to the other instances). */
export function applyToMail(sender: { wake(): void }, events: readonly DomainEvent[]): void {
  if (events.some((e) => e.type === 'mail.requested')) sender.wake();
}
