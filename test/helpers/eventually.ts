// Another instance hears of a change through Redis's invalidation message:
// milliseconds, not the same tick. Polls `check` until it holds or `ms` pass.
export async function within(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
}
