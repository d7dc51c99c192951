// Work that runs after a response has gone (forgot-password and resend do their
// look-up there, so their timing says nothing about the account). Tracked, so
// that a graceful stop waits for it; a failure is logged, never thrown.
import type { Logger } from './logger.js';

export class BackgroundTasks {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly logger: Logger) {}

  /** Run `task` on a later turn of the event loop. */
  run(label: string, task: () => Promise<void>): void {
    const p = new Promise<void>((resolve) => setTimeout(resolve, 0))
      .then(task)
      .catch((err: unknown) => this.logger.error({ err, task: label }, 'background task failed'))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Wait for every task started so far. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
