import { DurableObject } from "cloudflare:workers";
import type { TenantLimits } from "@meridian/protocol";
import { monthOf } from "./bucket";
import { tenantLedger } from "./durable";
import { GrantAuthority, type BudgetRefusal, type GrantAnswer, type GrantAsk } from "./grants";

/** A budget figure pushed by the ledger or read from it is trusted this long. */
const SPENT_FRESH_MS = 5_000;

interface Spent {
  month: number;
  tokens: number;
  bytes: number;
  at: number;
}

/**
 * One per tenant, the single authority on its limits: the requests-per-minute bucket, the
 * concurrency slots and the monthly budget check, serialised by the object. It does not see each
 * request: it hands each gateway isolate a short grant of tokens and slots (grants.ts) that the
 * isolate serves from in memory, and never grants more in sum than the limits, so they hold
 * across every isolate. The state is in memory: a restart refills the bucket and forgets grants
 * (see docs/api.md), while the budget is re-read from the tenant's usage ledger, which is durable.
 */
export class TenantLimiter extends DurableObject<Env> {
  private readonly authority = new GrantAuthority();
  private spent: Spent | null = null;

  /** A holder's next grant: what it keeps of the last, what more it may have; budget first. */
  async grant(tenant: string, limits: TenantLimits, ask: GrantAsk): Promise<GrantAnswer> {
    const budget = ask.final ? null : await this.budgetRefusal(tenant, limits);
    // No await between reading and writing the grants: the object serialises them.
    return this.authority.grant(ask, limits, Date.now(), budget);
  }

  /** The ledger tells what this month's usage is after each batch it applies. */
  noteSpent(month: number, tokens: number, bytes: number): void {
    if (this.spent === null || this.spent.month <= month) this.spent = { month, tokens, bytes, at: Date.now() };
  }

  /** Requests in flight as the isolates last reported them (each reports at least every grant). */
  inFlight(): number {
    return this.authority.inFlight(Date.now());
  }

  /** Whole tokens in the bucket, not counting those out on grants. */
  bucketTokens(limits: TenantLimits): number {
    return this.authority.bucketTokens(Date.now(), limits);
  }

  private async budgetRefusal(tenant: string, limits: TenantLimits): Promise<BudgetRefusal | null> {
    if (limits.monthlyTokens === undefined && limits.monthlyBytes === undefined) return null;
    const now = Date.now();
    const month = monthOf(now);
    const spent = await this.spentThisMonth(tenant, month.start, now);
    const over =
      limits.monthlyTokens !== undefined && spent.tokens >= limits.monthlyTokens
        ? `${spent.tokens} of ${limits.monthlyTokens} monthly tokens`
        : limits.monthlyBytes !== undefined && spent.bytes >= limits.monthlyBytes
          ? `${spent.bytes} of ${limits.monthlyBytes} monthly bytes`
          : null;
    if (over === null) return null;
    return { message: `the monthly budget is spent (${over}); it renews at ${new Date(month.next).toISOString()}`, retryAfterS: Math.ceil((month.next - now) / 1000) };
  }

  private async spentThisMonth(tenant: string, month: number, now: number): Promise<Spent> {
    if (this.spent !== null && this.spent.month === month && now - this.spent.at < SPENT_FRESH_MS) return this.spent;
    const totals = await tenantLedger(this.env, tenant).monthTotals(month);
    this.spent = { month, tokens: totals.tokens, bytes: totals.bytes, at: now };
    return this.spent;
  }
}
