// Waiting in tests: the one sleep and the one polling loop. Work a test can
// drive (the mail outbox, the audit writer, the counters, the event relay) is
// driven with its runOnce()/idle() instead; these are for what only time
// brings: another instance hearing of a change, a server coming back, a backoff.

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Nothing = undefined | null | false;

/**
 * Polls `probe` until it gives something other than undefined, null or false,
 * and returns that; throws, naming `what`, once `timeoutMs` passed without.
 */
export async function until<T>(
  what: string,
  probe: () => T | Promise<T>,
  opts: { timeoutMs?: number; everyMs?: number } = {},
): Promise<Exclude<T, Nothing>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v as Exclude<T, Nothing>;
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(opts.everyMs ?? 10);
  }
}

/**
 * Another instance hears of a change through Redis's invalidation message:
 * milliseconds, not the same tick. True as soon as `check` holds, false once
 * `ms` passed without.
 */
export async function within(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await sleep(2);
  }
}
