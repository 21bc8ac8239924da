import { DurableObject } from "cloudflare:workers";
import type { TenantLimits } from "@meridian/protocol";
import { liveLeases, monthOf, takeToken, type BucketState } from "./bucket";
import { tenantLedger } from "./durable";

/** A concurrency slot is held this long unless renewed: an isolate that dies mid-request frees it. */
export const LEASE_TTL_MS = 60_000;
/** A budget figure pushed by the ledger or read from it is trusted this long. */
const SPENT_FRESH_MS = 5_000;

export type LimitVerdict =
  | { ok: true; lease: string; limit: number; remaining: number; resetS: number }
  | { ok: false; reason: "rate_limited" | "concurrency_limited" | "budget_exhausted"; limit: number; remaining: number; resetS: number; retryAfterS: number; message: string };

interface Spent {
  month: number;
  tokens: number;
  bytes: number;
  at: number;
}

/**
 * One per tenant: the requests-per-minute bucket, the concurrency leases and the monthly budget
 * check, serialised by the object so they hold across every gateway isolate. The state is in
 * memory: a restart refills the bucket and forgets leases (see docs/api.md), while the budget
 * is re-read from the tenant's usage ledger, which is durable.
 */
export class TenantLimiter extends DurableObject<Env> {
  private bucket: BucketState | null = null;
  private readonly leases = new Map<string, number>();
  private spent: Spent | null = null;

  /** Checks budget, rate and concurrency, in that order, and takes a slot when all pass. */
  async acquire(tenant: string, limits: TenantLimits): Promise<LimitVerdict> {
    const now = Date.now();
    if (limits.monthlyTokens !== undefined || limits.monthlyBytes !== undefined) {
      const month = monthOf(now);
      const spent = await this.spentThisMonth(tenant, month.start, now);
      const over =
        limits.monthlyTokens !== undefined && spent.tokens >= limits.monthlyTokens
          ? `${spent.tokens} of ${limits.monthlyTokens} monthly tokens`
          : limits.monthlyBytes !== undefined && spent.bytes >= limits.monthlyBytes
            ? `${spent.bytes} of ${limits.monthlyBytes} monthly bytes`
            : null;
      if (over !== null) {
        const retryAfterS = Math.ceil((month.next - now) / 1000);
        return { ok: false, reason: "budget_exhausted", limit: limits.requestsPerMinute, remaining: 0, resetS: retryAfterS, retryAfterS, message: `the monthly budget is spent (${over}); it renews at ${new Date(month.next).toISOString()}` };
      }
    }
    const { state, verdict } = takeToken(this.bucket, limits.requestsPerMinute, now);
    if (!verdict.allowed) {
      this.bucket = state;
      return { ok: false, reason: "rate_limited", limit: limits.requestsPerMinute, remaining: 0, resetS: verdict.resetS, retryAfterS: verdict.retryAfterS, message: `more than ${limits.requestsPerMinute} requests per minute` };
    }
    if (liveLeases(this.leases, now) >= limits.concurrentRequests) {
      // The token is not spent on a request that is refused for concurrency.
      return { ok: false, reason: "concurrency_limited", limit: limits.requestsPerMinute, remaining: verdict.remaining, resetS: verdict.resetS, retryAfterS: 1, message: `${limits.concurrentRequests} requests are in flight already` };
    }
    this.bucket = state;
    const lease = crypto.randomUUID();
    this.leases.set(lease, now + LEASE_TTL_MS);
    return { ok: true, lease, limit: limits.requestsPerMinute, remaining: verdict.remaining, resetS: verdict.resetS };
  }

  /** Keeps a long response's slot; false when it had expired (the slot was taken back). */
  renew(lease: string): boolean {
    if (!this.leases.has(lease)) return false;
    this.leases.set(lease, Date.now() + LEASE_TTL_MS);
    return true;
  }

  release(lease: string): void {
    this.leases.delete(lease);
  }

  /** The ledger tells what this month's usage is after each batch it applies. */
  noteSpent(month: number, tokens: number, bytes: number): void {
    if (this.spent === null || this.spent.month <= month) this.spent = { month, tokens, bytes, at: Date.now() };
  }

  inFlight(): number {
    return liveLeases(this.leases, Date.now());
  }

  private async spentThisMonth(tenant: string, month: number, now: number): Promise<Spent> {
    if (this.spent !== null && this.spent.month === month && now - this.spent.at < SPENT_FRESH_MS) return this.spent;
    const totals = await tenantLedger(this.env, tenant).monthTotals(month);
    this.spent = { month, tokens: totals.tokens, bytes: totals.bytes, at: now };
    return this.spent;
  }
}
