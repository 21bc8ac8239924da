/**
 * Calendar arithmetic of a tenant's monthly budget (pure). The rate and concurrency arithmetic
 * is in grants.ts: the limiter's bucket and the grants it hands to isolates.
 */

/** Start of the UTC calendar month of `ms`, and of the next one. */
export function monthOf(ms: number): { start: number; next: number } {
  const d = new Date(ms);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), next: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}
