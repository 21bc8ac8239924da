import type { TenantLimits } from "@meridian/protocol";
import { HttpError } from "../errors";
import { waitWhile } from "../own-timers";
import type { AuthenticatedTenant } from "./authenticate";
import { tenantLimiter } from "./durable";
import { GRANT_TTL_MS, GrantHolder, SLOT_LEASE_TTL_MS, type GrantAnswer, type GrantAsk, type TakeResult } from "./grants";

/** A concurrency slot held for one request; released when its response ends. */
export interface Slot {
  headers: Record<string, string>;
  release(): void;
  /** Keeps the slot while `until` is pending (a long stream keeps its slot), then releases it. */
  holdUntil(until: Promise<unknown>): Promise<void>;
}

export function rateLimitHeaders(v: { limit: number; remaining: number; resetS: number }): Record<string, string> {
  return { "x-ratelimit-limit": String(v.limit), "x-ratelimit-remaining": String(v.remaining), "x-ratelimit-reset": String(v.resetS) };
}

/** How an isolate reaches a tenant's limiter (the Durable Object, or a stand-in in tests). */
export type GrantTransport = (ask: GrantAsk, limits: TenantLimits) => Promise<GrantAnswer>;
type WaitUntil = (p: Promise<unknown>) => void;

/** Rounds of asking a request may wait for before it is refused (others may be asking too). */
const MAX_ASK_ROUNDS = 3;

const unavailable = () => new HttpError(503, "limits_unavailable", "the tenant's limits could not be checked; retry shortly", {}, { "retry-after": "1" });

/**
 * One tenant's grant in this isolate (grants.ts has the arithmetic): requests are served from
 * it with no await; it is renewed in the background at half its life, awaited only when empty
 * or expired, and given back when it ends unused. One ask at a time: requests that need a grant
 * meanwhile wait for its answer.
 */
export class TenantGrants {
  readonly holder = new GrantHolder(crypto.randomUUID());
  /** The ask under way, awaited only by the request that made it (see askUnderWay). */
  private pending: Promise<boolean> | null = null;
  private pendingFinal = false;
  private lastAnswered = false;

  constructor(
    private readonly tenantId: string,
    private readonly transport: GrantTransport,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Takes a slot, or throws 429 with Retry-After and x-ratelimit-*, or 503 (limits fail closed). */
  async acquire(limits: TenantLimits, waitUntil: WaitUntil): Promise<Slot> {
    let result: TakeResult = this.holder.take(this.clock(), limits, true);
    for (let round = 1; result.kind === "ask"; round++) {
      this.holder.waiting += 1;
      let answered: boolean;
      try {
        answered = await this.ask(limits, waitUntil, false);
      } finally {
        this.holder.waiting -= 1;
      }
      const now = this.clock();
      const lastRound = round >= MAX_ASK_ROUNDS;
      // An answer slower than a grant's life is no grant (it counts from when the ask left).
      if (!this.holder.isValid(now)) {
        if (!answered || lastRound) throw unavailable();
        continue;
      }
      result = this.holder.take(now, limits, answered && !lastRound);
      // Unanswered, and the grant it still holds cannot serve this request: fail closed.
      if (!answered && result.kind !== "taken") throw unavailable();
    }
    if (result.kind === "refused") {
      const headers = rateLimitHeaders({ limit: limits.requestsPerMinute, remaining: result.remaining, resetS: result.resetS });
      throw new HttpError(429, result.reason, result.message, { tenant: this.tenantId }, { ...headers, "retry-after": String(result.retryAfterS) });
    }
    if (result.refreshDue) waitUntil(this.ask(limits, waitUntil, false));
    return this.slot(limits, waitUntil, rateLimitHeaders({ limit: limits.requestsPerMinute, remaining: result.remaining, resetS: result.resetS }));
  }

  /** Asks the limiter (or waits for the ask under way); true when it answered. */
  async ask(limits: TenantLimits, waitUntil: WaitUntil, final: boolean): Promise<boolean> {
    if (this.pending !== null) {
      const joinedFinal = this.pendingFinal;
      const answered = await this.askUnderWay();
      // A request that needs a grant does not settle for the answer to a give-back.
      return joinedFinal && !final ? this.ask(limits, waitUntil, false) : answered;
    }
    this.pendingFinal = final;
    const ask = this.holder.ask(this.clock(), limits, final);
    const pending = this.transport(ask, limits)
      .then(
        (answer) => {
          this.holder.answered(this.clock(), answer);
          return true;
        },
        (err: unknown) => {
          this.holder.failed();
          console.warn(JSON.stringify({ at: "tenants.limiter", tenant: this.tenantId, error: String(err) }));
          return false;
        },
      )
      .then((answered) => {
        this.lastAnswered = answered;
        this.pending = null;
        return answered;
      });
    this.pending = pending;
    if (!final) waitUntil(pending.then((ok) => (ok ? this.giveBackWhenUnused(limits, waitUntil) : undefined)));
    return pending;
  }

  /**
   * Waits for another request's ask to end, on timers of this request's own: the runtime
   * cancels a continuation that another request's I/O resolves, so that ask's promise is
   * never awaited here. False when it failed or took longer than a grant lives.
   */
  private async askUnderWay(): Promise<boolean> {
    const pending = this.pending;
    if (await waitWhile(() => this.pending === pending, GRANT_TTL_MS, this.clock)) return this.lastAnswered;
    // An ask that never ended (its request was cancelled) is abandoned, so the next one can go.
    this.pending = null;
    this.holder.failed();
    return false;
  }

  /** Near the end of a grant that no newer ask replaced: what it did not use goes back. */
  private async giveBackWhenUnused(limits: TenantLimits, waitUntil: WaitUntil): Promise<void> {
    const generation = this.holder.currentGeneration;
    const at = this.holder.returnAt();
    if (at === null) return;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - this.clock())));
    if (this.holder.currentGeneration !== generation || this.holder.isAsking) return;
    await this.ask(limits, waitUntil, true);
  }

  private slot(limits: TenantLimits, waitUntil: WaitUntil, headers: Record<string, string>): Slot {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.holder.release();
      // The last request of an isolate whose grant has ended: its slots go back now.
      if (this.holder.owesReturn(this.clock())) waitUntil(this.ask(limits, waitUntil, true));
    };
    return {
      headers,
      release,
      holdUntil: async (until) => {
        // A long stream's slot is held for SLOT_LEASE_TTL_MS after each contact: renew it.
        const timer = setInterval(() => {
          if (!this.holder.isValid(this.clock()) && !this.holder.isAsking) waitUntil(this.ask(limits, waitUntil, true));
        }, SLOT_LEASE_TTL_MS / 3);
        try {
          await until;
        } finally {
          clearInterval(timer);
          release();
        }
      },
    };
  }
}

/** This isolate's grants, one per tenant it has served. */
const grantsByTenant = new Map<string, TenantGrants>();

/**
 * Takes a slot for one request from this isolate's grant of the tenant's limits (the tenant's
 * limiter, one Durable Object, is asked only to renew the grant), or throws 429 with
 * Retry-After and the x-ratelimit-* headers. If the limiter cannot be reached and no valid grant
 * is left, the request is refused (503): limits fail closed.
 */
export function acquireSlot(env: Env, tenant: AuthenticatedTenant, waitUntil: WaitUntil): Promise<Slot> {
  let grants = grantsByTenant.get(tenant.id);
  if (grants === undefined) {
    grants = new TenantGrants(tenant.id, (ask, limits) => tenantLimiter(env, tenant.id).grant(tenant.id, limits, ask));
    grantsByTenant.set(tenant.id, grants);
  }
  return grants.acquire(tenant.limits, waitUntil);
}
