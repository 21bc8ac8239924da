/**
 * The pure arithmetic of a tenant's limits (no I/O, no clock of its own): a token bucket of
 * `requestsPerMinute` tokens refilled continuously, and concurrency leases that expire.
 */
export interface BucketState {
  tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  at: number;
}

export interface BucketVerdict {
  allowed: boolean;
  /** Whole requests left after this one. */
  remaining: number;
  /** Seconds until the bucket is full again (x-ratelimit-reset). */
  resetS: number;
  /** Seconds until one more request is allowed (Retry-After); 0 when allowed. */
  retryAfterS: number;
}

/** Takes one token if there is one. The bucket starts full: a minute's worth may come at once. */
export function takeToken(state: BucketState | null, perMinute: number, now: number): { state: BucketState; verdict: BucketVerdict } {
  const perMs = perMinute / 60_000;
  const previous = state ?? { tokens: perMinute, at: now };
  const tokens = Math.min(perMinute, previous.tokens + Math.max(0, now - previous.at) * perMs);
  const allowed = tokens >= 1;
  const left = allowed ? tokens - 1 : tokens;
  const resetS = Math.ceil((perMinute - left) / perMs / 1000);
  const retryAfterS = allowed ? 0 : Math.max(1, Math.ceil((1 - left) / perMs / 1000));
  return { state: { tokens: left, at: now }, verdict: { allowed, remaining: Math.floor(left), resetS, retryAfterS } };
}

/** Drops expired leases; the count left is what is in flight. */
export function liveLeases(leases: Map<string, number>, now: number): number {
  for (const [id, expires] of leases) if (expires <= now) leases.delete(id);
  return leases.size;
}

/** Start of the UTC calendar month of `ms`, and of the next one. */
export function monthOf(ms: number): { start: number; next: number } {
  const d = new Date(ms);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), next: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}
