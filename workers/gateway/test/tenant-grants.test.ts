/**
 * Isolates' grants against the real TenantLimiter object: two holders in one test stand for two
 * isolates (each `TenantGrants` is what one isolate keeps per tenant). The limits hold across
 * them, unused tokens come back, long streams keep their slots, and an unreachable limiter
 * fails closed once the grant in hand is spent.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { HttpError } from "../src/errors";
import { tenantLimiter } from "../src/tenants/durable";
import { SLOT_LEASE_TTL_MS } from "../src/tenants/grants";
import { TenantGrants, type GrantTransport, type Slot } from "../src/tenants/limits";

/** One isolate's view of a tenant: its grants, reaching the tenant's limiter object (or not). */
function isolate(tenant: string, reachable: () => boolean = () => true): TenantGrants {
  const transport: GrantTransport = async (ask, limits) => {
    if (!reachable()) throw new Error("limiter unreachable");
    return tenantLimiter(env, tenant).grant(tenant, limits, ask);
  };
  return new TenantGrants(tenant, transport);
}

/** Collects what a request leaves running in the background, as the runtime's waitUntil would. */
function background(): { waitUntil: (p: Promise<unknown>) => void; settle: () => Promise<void> } {
  const pending: Promise<unknown>[] = [];
  return {
    waitUntil: (p) => void pending.push(p),
    settle: async () => {
      while (pending.length > 0) await Promise.allSettled(pending.splice(0));
    },
  };
}

async function tryAcquire(grants: TenantGrants, limits: { requestsPerMinute: number; concurrentRequests: number }, waitUntil: (p: Promise<unknown>) => void): Promise<Slot | HttpError> {
  try {
    return await grants.acquire(limits, waitUntil);
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
}

describe("grants of a tenant's limits across isolates", () => {
  it("two isolates together never exceed requests per minute, and use the whole bucket between them", async () => {
    const limits = { requestsPerMinute: 12, concurrentRequests: 100 };
    const a = isolate("grants-rate");
    const b = isolate("grants-rate");
    const bg = background();
    const started = Date.now();
    let served = 0;
    const refusals: string[] = [];
    for (let i = 0; i < 20; i++) {
      // Both isolates at once, as concurrent requests would arrive.
      const results = await Promise.all([tryAcquire(a, limits, bg.waitUntil), tryAcquire(b, limits, bg.waitUntil), tryAcquire(a, limits, bg.waitUntil)]);
      for (const r of results) {
        if (r instanceof HttpError) refusals.push(`${r.status} ${r.code}`);
        else {
          served += 1;
          r.release();
        }
      }
    }
    const elapsedS = (Date.now() - started) / 1000;
    const refilled = Math.floor((elapsedS * limits.requestsPerMinute) / 60);
    console.log(`[grants] 60 requests over two isolates at 12/min: ${served} served in ${elapsedS.toFixed(2)} s (refill allows ${refilled} more)`);
    expect(served).toBeGreaterThanOrEqual(12);
    expect(served).toBeLessThanOrEqual(12 + refilled);
    expect(new Set(refusals)).toEqual(new Set(["429 rate_limited"]));
    await bg.settle();
  });

  it("two isolates together never hold more than the concurrent requests allowed", async () => {
    const limits = { requestsPerMinute: 1000, concurrentRequests: 3 };
    const a = isolate("grants-concurrency");
    const b = isolate("grants-concurrency");
    const bg = background();
    const held: Slot[] = [];
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      for (const r of await Promise.all([tryAcquire(a, limits, bg.waitUntil), tryAcquire(b, limits, bg.waitUntil)])) {
        if (r instanceof HttpError) codes.push(r.code);
        else held.push(r);
      }
    }
    console.log(`[grants] 16 held requests over two isolates at concurrency 3: ${held.length} admitted (a ${a.holder.inFlight}, b ${b.holder.inFlight})`);
    expect(held.length).toBeLessThanOrEqual(3);
    expect(held.length).toBeGreaterThanOrEqual(2);
    expect(new Set(codes)).toEqual(new Set(["concurrency_limited"]));
    // Ending the requests frees their slots: once the isolates give back what they hold, the
    // other isolate can have them (each gives back when its grant ends unused).
    for (const slot of held) slot.release();
    await bg.settle();
    const again: Slot[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await tryAcquire(b, limits, bg.waitUntil);
      if (!(r instanceof HttpError)) again.push(r);
    }
    expect(again.length).toBe(3);
    for (const slot of again) slot.release();
    await bg.settle();
  });

  it("gives unused tokens back when a grant ends unused, so another isolate can have them", async () => {
    const limits = { requestsPerMinute: 6, concurrentRequests: 10 };
    const a = isolate("grants-return");
    const b = isolate("grants-return");
    const bg = background();
    // A serves three requests; its second ask (as much again as it used, plus one, plus the
    // request waiting) leaves it holding tokens it will not use.
    for (let i = 0; i < 3; i++) {
      const slot = await tryAcquire(a, limits, bg.waitUntil);
      if (slot instanceof HttpError) throw slot;
      slot.release();
    }
    const heldByA = limits.requestsPerMinute - 3 - (await tenantLimiter(env, "grants-return").bucketTokens(limits));
    expect(heldByA).toBeGreaterThan(0);
    // A goes idle: near the end of its grant it gives back what it did not use.
    await bg.settle();
    let servedByB = 0;
    for (let i = 0; i < 10; i++) {
      const slot = await tryAcquire(b, limits, bg.waitUntil);
      if (!(slot instanceof HttpError)) {
        servedByB += 1;
        slot.release();
      }
    }
    const usedByA = 3;
    console.log(`[grants] 6/min: A used ${usedByA}, held ${heldByA} unused and went idle; B then served ${servedByB}`);
    // Without the return B would have had nothing until A's grant expired.
    expect(servedByB).toBeGreaterThanOrEqual(6 - usedByA);
    expect(servedByB + usedByA).toBeLessThanOrEqual(7);
    await bg.settle();
  });

  it("serves a request that arrives while the isolate is giving its grant back (it asks anew)", async () => {
    const limits = { requestsPerMinute: 1000, concurrentRequests: 10 };
    const a = isolate("grants-give-back");
    const bg = background();
    const first = await tryAcquire(a, limits, bg.waitUntil);
    if (first instanceof HttpError) throw first;
    first.release();
    const givingBack = a.ask(limits, bg.waitUntil, true);
    const during = await tryAcquire(a, limits, bg.waitUntil);
    expect(during).not.toBeInstanceOf(HttpError);
    expect(await givingBack).toBe(true);
    if (!(during instanceof HttpError)) during.release();
    await bg.settle();
  });

  it(
    "keeps a long stream's slot past the slot lease, and frees it when the stream ends",
    async () => {
      const limits = { requestsPerMinute: 1000, concurrentRequests: 1 };
      const a = isolate("grants-stream");
      const b = isolate("grants-stream");
      const bg = background();
      const slot = await tryAcquire(a, limits, bg.waitUntil);
      if (slot instanceof HttpError) throw slot;
      let endStream: () => void = () => {};
      const streamEnded = new Promise<void>((resolve) => (endStream = resolve));
      bg.waitUntil(slot.holdUntil(streamEnded));
      await new Promise((resolve) => setTimeout(resolve, SLOT_LEASE_TTL_MS + 1_500));
      const during = await tryAcquire(b, limits, bg.waitUntil);
      expect(during).toBeInstanceOf(HttpError);
      if (during instanceof HttpError) expect(during.code).toBe("concurrency_limited");
      endStream();
      await bg.settle();
      const after = await tryAcquire(b, limits, bg.waitUntil);
      expect(after).not.toBeInstanceOf(HttpError);
      if (!(after instanceof HttpError)) after.release();
      await bg.settle();
    },
    SLOT_LEASE_TTL_MS * 4,
  );

  it("fails closed: 503 limits_unavailable once the limiter is unreachable and the grant in hand is spent", async () => {
    const limits = { requestsPerMinute: 1000, concurrentRequests: 10 };
    let up = false;
    const cold = isolate("grants-down", () => up);
    const bg = background();
    const refused = await tryAcquire(cold, limits, bg.waitUntil);
    expect(refused).toBeInstanceOf(HttpError);
    if (refused instanceof HttpError) {
      expect(refused.status).toBe(503);
      expect(refused.code).toBe("limits_unavailable");
      expect(refused.headers["retry-after"]).toBe("1");
    }
    // With a grant in hand the isolate serves from it while the limiter is down, then refuses.
    up = true;
    const first = await tryAcquire(cold, limits, bg.waitUntil);
    expect(first).not.toBeInstanceOf(HttpError);
    up = false;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await tryAcquire(cold, limits, bg.waitUntil);
      statuses.push(r instanceof HttpError ? r.status : 200);
      if (!(r instanceof HttpError)) r.release();
    }
    console.log(`[grants] limiter down after one grant: ${statuses.join(" ")}`);
    expect(statuses.at(-1)).toBe(503);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    await bg.settle();
  });

  it("requests that find an ask under way wait for it without sharing its promise, and an ask that never ends is abandoned", async () => {
    const limits = { requestsPerMinute: 1000, concurrentRequests: 100 };
    let asks = 0;
    let hang = false;
    const transport: GrantTransport = async (ask, l) => {
      asks++;
      if (hang) return new Promise(() => {}); // its request was cancelled: never answers
      await new Promise((r) => setTimeout(r, 30));
      return tenantLimiter(env, "grants-waiters").grant("grants-waiters", l, ask);
    };
    const grants = new TenantGrants("grants-waiters", transport);
    const bg = background();
    // Twenty requests arrive at once on a cold isolate: one ask, the others wait for its answer.
    const burst = await Promise.all(Array.from({ length: 20 }, () => tryAcquire(grants, limits, bg.waitUntil)));
    const served = burst.filter((r) => !(r instanceof HttpError));
    console.log(`[grants] a burst of 20 on a cold isolate: ${served.length} served after ${asks} asks`);
    expect(served.length).toBe(20);
    expect(asks).toBeLessThan(20);
    for (const slot of served) if (!(slot instanceof HttpError)) slot.release();
    // An ask that never answers holds the others only for a grant's life; then a new ask goes.
    hang = true;
    const before = asks;
    const stuck = grants.ask(limits, bg.waitUntil, false);
    const waited = await grants.ask(limits, bg.waitUntil, false);
    expect(waited).toBe(false);
    hang = false;
    expect(await grants.ask(limits, bg.waitUntil, false)).toBe(true);
    expect(asks).toBe(before + 2);
    void stuck;
  });
});
