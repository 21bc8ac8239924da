/**
 * The grant arithmetic alone (grants.ts: no I/O, time passed in): the limiter's authority and
 * the isolates' holders, including random interleavings of many holders over a network with
 * delays, where the limits must hold exactly as one bucket's would.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GRANT_TTL_MS, GrantAuthority, GrantHolder, fairShare, type GrantAnswer, type GrantAsk, type RateLimits } from "../src/tenants/grants";

/** Asks and answers straight away (no network). */
function exchange(authority: GrantAuthority, holder: GrantHolder, limits: RateLimits, now: number, final = false): GrantAnswer {
  const answer = authority.grant(holder.ask(now, limits, final), limits, now, null);
  holder.answered(now, answer);
  return answer;
}

describe("grant arithmetic", () => {
  it("serves a single holder the whole bucket, then refuses with the limiter's Retry-After", () => {
    const limits = { requestsPerMinute: 3, concurrentRequests: 10 };
    const authority = new GrantAuthority();
    const holder = new GrantHolder("a");
    let served = 0;
    for (let i = 0; i < 5; i++) {
      let taken = holder.take(1000, limits, true);
      if (taken.kind === "ask") {
        exchange(authority, holder, limits, 1000);
        taken = holder.take(1000, limits, false);
      }
      if (taken.kind === "taken") {
        served += 1;
        holder.release();
        if (i === 0) expect(taken.remaining).toBe(2);
      } else {
        expect(taken).toMatchObject({ kind: "refused", reason: "rate_limited", remaining: 0 });
        if (taken.kind === "refused") expect(taken.retryAfterS).toBe(20);
      }
    }
    expect(served).toBe(3);
  });

  it("gives unused tokens back to the bucket when a holder ends its grant", () => {
    const limits = { requestsPerMinute: 10, concurrentRequests: 4 };
    const authority = new GrantAuthority();
    const a = new GrantHolder("a");
    // A's first grant is one token; it uses it, asks again (2 * 1 + 1 = 3) and uses one more.
    exchange(authority, a, limits, 0);
    expect(a.take(0, limits, true).kind).toBe("taken");
    a.release();
    expect(a.take(0, limits, true).kind).toBe("ask");
    expect(exchange(authority, a, limits, 0).tokens).toBe(3);
    expect(a.take(0, limits, true).kind).toBe("taken");
    a.release();
    expect(authority.bucketTokens(0, limits)).toBe(6);
    expect(authority.outstandingTokens(null)).toBe(3);
    // A ends its grant: its 2 unused tokens come back, the one it used does not.
    exchange(authority, a, limits, 0, true);
    expect(authority.outstandingTokens(null)).toBe(0);
    expect(authority.bucketTokens(0, limits)).toBe(8);
    const b = new GrantHolder("b");
    let servedByB = 0;
    for (let i = 0; i < 12; i++) {
      let taken = b.take(0, limits, true);
      if (taken.kind === "ask") {
        exchange(authority, b, limits, 0);
        taken = b.take(0, limits, false);
      }
      if (taken.kind === "taken") servedByB += 1;
      b.release();
    }
    expect(servedByB).toBe(8);
  });

  it("counts an expired grant's tokens as used, and sizes asks from use (as much again, plus one)", () => {
    const limits = { requestsPerMinute: 60, concurrentRequests: 100 };
    const authority = new GrantAuthority();
    const holder = new GrantHolder("a");
    const first = holder.ask(0, limits);
    expect(first).toMatchObject({ wantTokens: 1, wantSlots: 1, keepTokens: 0 });
    holder.answered(0, authority.grant(first, limits, 0, null));
    expect(holder.take(0, limits, true).kind).toBe("taken");
    const second = holder.ask(1, limits);
    expect(second.wantTokens + second.keepTokens).toBe(3);
    holder.answered(1, authority.grant(second, limits, 1, null));
    // The holder dies with its grant: when the grant expires its 3 tokens are not returned;
    // the bucket (60 - 1 used - 3 granted = 56) has only refilled 2 in those 2 s.
    expect(authority.outstandingTokens(null)).toBe(3);
    expect(authority.bucketTokens(GRANT_TTL_MS + 1, limits)).toBe(58);
    expect(authority.outstandingTokens(null)).toBe(0);
  });

  it("shares by demand: a busy holder cannot take everything from a newcomer", () => {
    expect(fairShare(60, 100, 0)).toBe(60);
    expect(fairShare(60, 40, 40)).toBe(30);
    expect(fairShare(3, 1, 500)).toBe(1);
    expect(fairShare(0, 5, 0)).toBe(0);
    const limits = { requestsPerMinute: 60, concurrentRequests: 4 };
    const authority = new GrantAuthority();
    const holders = Array.from({ length: 6 }, (_, i) => new GrantHolder(`h${i}`));
    // Each holder serves one request at a time: with 4 slots, no holder holds more than 2.
    for (const h of holders) {
      let taken = h.take(0, limits, true);
      if (taken.kind === "ask") {
        exchange(authority, h, limits, 0);
        taken = h.take(0, limits, false);
      }
    }
    expect(authority.heldSlots(0)).toBeLessThanOrEqual(4);
    const served = holders.filter((h) => h.inFlight === 1).length;
    expect(served).toBeGreaterThanOrEqual(2);
    for (const h of holders) expect(h.inFlight).toBeLessThanOrEqual(1);
    console.log(`[grants] 6 holders, concurrency 4: ${served} served at once, ${authority.heldSlots(0)} slots held`);
  });

  it("refuses the whole grant when the budget is spent, and keeps the slots of requests in flight", () => {
    const limits = { requestsPerMinute: 60, concurrentRequests: 4 };
    const authority = new GrantAuthority();
    const holder = new GrantHolder("a");
    exchange(authority, holder, limits, 0);
    expect(holder.take(0, limits, true).kind).toBe("taken");
    const answer = authority.grant(holder.ask(10, limits), limits, 10, { message: "spent", retryAfterS: 99 });
    holder.answered(10, answer);
    expect(answer).toMatchObject({ tokens: 0, carried: 0 });
    expect(answer.slots).toBeGreaterThanOrEqual(1);
    expect(holder.take(11, limits, true)).toMatchObject({ kind: "refused", reason: "budget_exhausted", retryAfterS: 99 });
  });

  it("never lets more through than one bucket would, per minute and in flight, over random interleavings of many holders", () => {
    interface Message {
      at: number;
      run: () => void;
    }
    const action = fc.record({
      dt: fc.integer({ min: 0, max: 150 }),
      holder: fc.nat({ max: 7 }),
      op: fc.oneof({ arbitrary: fc.constant("request"), weight: 20 }, { arbitrary: fc.constant("end"), weight: 16 }, { arbitrary: fc.constant("return"), weight: 2 }, { arbitrary: fc.constant("die"), weight: 1 }),
      delayOut: fc.integer({ min: 0, max: 300 }),
      delayBack: fc.integer({ min: 0, max: 300 }),
    });
    let runs = 0;
    let maxServed = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 120 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 2, max: 8 }), fc.array(action, { minLength: 200, maxLength: 600, size: "max" }), (rpm, concurrency, holderCount, actions) => {
        const limits = { requestsPerMinute: rpm, concurrentRequests: concurrency };
        const authority = new GrantAuthority();
        let serial = 0;
        const holders = Array.from({ length: holderCount }, () => new GrantHolder(`h${serial++}`));
        let queue: Message[] = [];
        const served: number[] = [];
        let now = 0;
        const send = (index: number, final: boolean, delayOut: number, delayBack: number) => {
          const holder = holders[index];
          if (holder === undefined || holder.isAsking) return;
          const ask: GrantAsk = holder.ask(now, limits, final);
          queue.push({
            at: now + delayOut,
            run: () => {
              const answer = authority.grant(ask, limits, now, null);
              queue.push({ at: now + delayBack, run: () => holders[index] === holder && holder.answered(now, answer) });
            },
          });
        };
        const check = () => {
          const inFlight = holders.reduce((n, h) => n + h.inFlight, 0);
          if (inFlight > concurrency) throw new Error(`${inFlight} in flight with a limit of ${concurrency}`);
          if (authority.heldSlots(now) > concurrency) throw new Error(`${authority.heldSlots(now)} slots held`);
        };
        for (const a of actions) {
          const until = now + a.dt;
          // Deliver what is due, in time order.
          for (;;) {
            queue.sort((x, y) => x.at - y.at);
            const next = queue[0];
            if (next === undefined || next.at > until) break;
            queue = queue.slice(1);
            now = Math.max(now, next.at);
            next.run();
            check();
          }
          now = until;
          const holder = holders[a.holder % holderCount];
          const index = a.holder % holderCount;
          if (holder === undefined) continue;
          if (a.op === "request") {
            const taken = holder.take(now, limits, true);
            if (taken.kind === "taken") served.push(now);
            if ((taken.kind === "taken" && taken.refreshDue) || taken.kind === "ask") send(index, false, a.delayOut, a.delayBack);
          } else if (a.op === "end") {
            if (holder.inFlight > 0) holder.release();
          } else if (a.op === "return") {
            send(index, true, a.delayOut, a.delayBack);
          } else {
            holders[index] = new GrantHolder(`h${serial++}`);
          }
          check();
        }
        // In any window of W ms, at most rpm + rpm * W / 60 s were served (one bucket's envelope).
        const perMs = rpm / 60_000;
        let best = Number.NEGATIVE_INFINITY;
        served.forEach((t, j) => {
          best = Math.max(best, perMs * t - j);
          const through = j + 1 - perMs * t + best;
          if (through > rpm + 1e-9) throw new Error(`${through} requests in a window, limit ${rpm}`);
        });
        runs += 1;
        maxServed = Math.max(maxServed, served.length);
      }),
      { numRuns: 300, seed: 14 },
    );
    console.log(`[grants] ${runs} random interleavings held; up to ${maxServed} requests served in one`);
    expect(maxServed).toBeGreaterThan(60);
  });
});
