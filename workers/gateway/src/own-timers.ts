/** How often a waiting request looks again. */
const POLL_MS = 2;

/**
 * Waits, on this request's own timers, until `stillWaiting()` turns false or `ms` pass; true
 * when it turned false in time. How a request waits for work another request started (a grant
 * ask, a key sync): it never awaits that request's promise, because workerd cancels a
 * continuation that another request's I/O resolves, and the other request may itself be
 * cancelled mid-way (docs/design.md, isolate.ts).
 */
export async function waitWhile(stillWaiting: () => boolean, ms: number, clock: () => number = Date.now): Promise<boolean> {
  const giveUpAt = clock() + ms;
  while (stillWaiting()) {
    if (clock() >= giveUpAt) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return true;
}
