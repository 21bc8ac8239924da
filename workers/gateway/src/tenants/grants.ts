/**
 * Quota leasing, pure (no I/O, no clock of its own): the arithmetic of the grants a tenant's
 * limiter hands to gateway isolates, on both sides.
 *
 * - `GrantAuthority` runs inside the tenant's TenantLimiter object, the single authority. It keeps
 *   the requests-per-minute token bucket and, per holder (one per isolate), what it has granted:
 *   rate tokens (valid `GRANT_TTL_MS`) and concurrency slots (held until returned, or for
 *   `SLOT_LEASE_TTL_MS` after the holder was last heard from, so a dead isolate frees them).
 *   Granted tokens leave the bucket and count against its capacity until they come back or
 *   expire, so `bucket + outstanding <= requestsPerMinute`: across all holders together the
 *   requests served in any window are at most what one bucket would let through. Granted slots
 *   never sum past `concurrentRequests`.
 * - `GrantHolder` is an isolate's side: it serves requests from its grant with no await, says
 *   when to ask again (before it runs out) and sizes what it asks from its own recent use.
 *
 * Times are each side's own clock and only differences are used: a holder counts its grant valid
 * from the moment it sent the ask, which is never later than the moment the authority granted it.
 */

/** How long a grant's tokens are good for. */
export const GRANT_TTL_MS = 2_000;
/** A holder asks again, in the background, once this much of its grant's life has passed. */
export const REFRESH_AT = 0.5;
/** An idle holder gives back what it did not use once this much of its grant's life has passed. */
export const RETURN_AT = 0.85;
/** Slots are held this long after the holder was last heard from (long streams renew them). */
export const SLOT_LEASE_TTL_MS = 10_000;
/** A limiter's "no slot free" is believed this long before the holder asks again. */
export const NO_SLOT_RECHECK_MS = 250;

export interface RateLimits {
  requestsPerMinute: number;
  concurrentRequests: number;
}

/** What a holder sends: what it keeps of its current grant, and what more it would like. */
export interface GrantAsk {
  holder: string;
  /** Tokens of its current grant it keeps using. */
  keepTokens: number;
  /** Unused tokens of its current grant it gives back (it dropped them when it asked). */
  returnTokens: number;
  /** Slots it keeps: at least its requests in flight. */
  keepSlots: number;
  inFlight: number;
  /** New tokens and slots wanted on top of what it keeps. */
  wantTokens: number;
  wantSlots: number;
  /** Tokens used since its previous ask (recent demand, for the fair share). */
  used: number;
  /** The holder ends its grant: it keeps only slots still in flight. */
  final: boolean;
}

export interface GrantAnswer {
  /** Of `keepTokens`, how many the authority still counts as the holder's (0 if it had expired). */
  carried: number;
  /** New tokens, on top of `carried`. */
  tokens: number;
  /** Slots the holder now holds in all (kept + new). */
  slots: number;
  ttlMs: number;
  /** Whole tokens left in the limiter's bucket after this grant. */
  bucket: number;
  /** Slots nobody holds after this grant. */
  freeSlots: number;
  /** Seconds until the bucket (counting granted tokens) is full again: x-ratelimit-reset. */
  resetS: number;
  /** Seconds until the bucket has one token again; 0 when it has one. */
  retryAfterS: number;
  /** The monthly budget is spent: no tokens until the month turns. */
  budget: BudgetRefusal | null;
}

export interface BudgetRefusal {
  message: string;
  retryAfterS: number;
}

interface HolderRecord {
  tokens: number;
  tokensExpireAt: number;
  slots: number;
  slotsExpireAt: number;
  inFlight: number;
  /** Last asked (new tokens / slots): the holder's recent demand, weighed in others' shares. */
  wantTokens: number;
  wantSlots: number;
}

/** A share of `free` for one asker among others, by demand: at least 1 when anything is free. */
export function fairShare(free: number, want: number, othersWant: number): number {
  if (free < 1 || want < 1) return 0;
  const proportional = Math.floor((free * want) / (want + othersWant));
  return Math.min(want, Math.floor(free), Math.max(1, proportional));
}

/** The limiter's side: the bucket, and what each holder has been granted. */
export class GrantAuthority {
  private bucket: number | null = null;
  private at = 0;
  private readonly holders = new Map<string, HolderRecord>();

  constructor(
    private readonly ttlMs = GRANT_TTL_MS,
    private readonly slotTtlMs = SLOT_LEASE_TTL_MS,
  ) {}

  grant(ask: GrantAsk, limits: RateLimits, now: number, budget: BudgetRefusal | null): GrantAnswer {
    this.expire(now);
    const capacity = limits.requestsPerMinute;
    const perMs = capacity / 60_000;
    const previous = this.holders.get(ask.holder);
    // Settle the previous grant: what the holder gives back returns to the bucket, what it
    // keeps stays its own (unless the budget is spent: it may have used some of them while
    // this ask travelled, so they are counted as used), and the rest it used.
    const stillHeld = previous?.tokens ?? 0;
    const kept = clamp(ask.keepTokens, 0, stillHeld);
    const carried = ask.final || budget !== null ? 0 : kept;
    const returned = clamp(ask.returnTokens, 0, stillHeld - kept);
    const outstandingOthers = this.outstandingTokens(ask.holder);
    this.refill(now, capacity, perMs, outstandingOthers + stillHeld);
    this.bucket = (this.bucket ?? 0) + returned;

    let othersSlots = 0;
    let othersWantTokens = 0;
    let othersWantSlots = 0;
    for (const [id, r] of this.holders) {
      if (id === ask.holder) continue;
      othersSlots += r.slots;
      if (r.tokens > 0) othersWantTokens += r.wantTokens;
      othersWantSlots += r.wantSlots;
    }
    const inFlight = Math.max(0, Math.floor(ask.inFlight));
    // Slots it held are its to keep; slots in flight are in flight whatever the books say
    // (only after a lapse longer than SLOT_LEASE_TTL_MS can that exceed the limit); beyond
    // those it keeps only what is free.
    const keepable = Math.max(previous?.slots ?? 0, limits.concurrentRequests - othersSlots);
    const keepSlots = ask.final ? inFlight : Math.max(inFlight, Math.min(Math.floor(ask.keepSlots), keepable));

    const refused = ask.final || budget !== null;
    const tokens = refused ? 0 : fairShare(Math.floor(this.bucket), Math.floor(ask.wantTokens), othersWantTokens);
    const freeSlots = Math.max(0, limits.concurrentRequests - othersSlots - keepSlots);
    const slots = keepSlots + (refused ? 0 : fairShare(freeSlots, Math.floor(ask.wantSlots), othersWantSlots));
    this.bucket -= tokens;

    if (ask.final && slots === 0) this.holders.delete(ask.holder);
    else {
      this.holders.set(ask.holder, {
        tokens: carried + tokens,
        tokensExpireAt: now + this.ttlMs,
        slots,
        slotsExpireAt: now + this.slotTtlMs,
        inFlight,
        wantTokens: refused ? 0 : Math.max(0, Math.floor(ask.wantTokens)),
        wantSlots: refused ? 0 : Math.max(0, Math.floor(ask.wantSlots)),
      });
    }
    const outstanding = this.outstandingTokens(null);
    return {
      carried,
      tokens,
      slots,
      ttlMs: this.ttlMs,
      bucket: Math.floor(this.bucket),
      freeSlots: Math.max(0, limits.concurrentRequests - othersSlots - slots),
      resetS: Math.max(0, Math.ceil((capacity - this.bucket - outstanding) / perMs / 1000)),
      retryAfterS: this.bucket >= 1 ? 0 : Math.max(1, Math.ceil((1 - this.bucket) / perMs / 1000)),
      budget,
    };
  }

  /** Requests in flight as the holders last reported them. */
  inFlight(now: number): number {
    this.expire(now);
    let n = 0;
    for (const r of this.holders.values()) n += r.inFlight;
    return n;
  }

  /** Slots held by all holders (never more than the limit, barring a lapse; see `grant`). */
  heldSlots(now: number): number {
    this.expire(now);
    let n = 0;
    for (const r of this.holders.values()) n += r.slots;
    return n;
  }

  /** Tokens granted and not yet back or expired (all holders but `except`). */
  outstandingTokens(except: string | null): number {
    let n = 0;
    for (const [id, r] of this.holders) if (id !== except) n += r.tokens;
    return n;
  }

  /** Whole tokens in the bucket now (granted ones not counted). */
  bucketTokens(now: number, limits: RateLimits): number {
    this.expire(now);
    this.refill(now, limits.requestsPerMinute, limits.requestsPerMinute / 60_000, this.outstandingTokens(null));
    return Math.floor(this.bucket ?? 0);
  }

  /** Expired tokens are lost, never returned: the holder may have used them. */
  private expire(now: number): void {
    for (const [id, r] of this.holders) {
      if (r.tokensExpireAt <= now) {
        r.tokens = 0;
        r.wantTokens = 0;
      }
      if (r.slotsExpireAt <= now) {
        r.slots = 0;
        r.inFlight = 0;
        r.wantSlots = 0;
      }
      if (r.tokens === 0 && r.slots === 0) this.holders.delete(id);
    }
  }

  /** Refills continuously; the bucket starts full. Tokens out on grants count as still in it. */
  private refill(now: number, capacity: number, perMs: number, outstanding: number): void {
    const room = Math.max(0, capacity - outstanding);
    this.bucket = this.bucket === null ? room : Math.min(room, this.bucket + Math.max(0, now - this.at) * perMs);
    this.at = now;
  }
}

export type TakeResult =
  | { kind: "taken"; remaining: number; resetS: number; refreshDue: boolean }
  | { kind: "ask" }
  | { kind: "refused"; reason: "rate_limited" | "concurrency_limited" | "budget_exhausted"; remaining: number; resetS: number; retryAfterS: number; message: string };

interface LastAnswer {
  at: number;
  bucket: number;
  freeSlots: number;
  resetS: number;
  retryAfterS: number;
  budget: BudgetRefusal | null;
}

/** An isolate's side of one tenant's grants. */
export class GrantHolder {
  private tokens = 0;
  private slots = 0;
  private inFlightNow = 0;
  private validUntil = 0;
  private grantedAt = 0;
  private generation = 0;
  /** Slots the authority counts as ours (so an idle holder knows it has something to give back). */
  private held = 0;
  private asking: { sentAt: number; usedSinceSend: number; final: boolean } | null = null;
  private last: LastAnswer | null = null;
  private usedSinceAsk = 0;
  private peakSinceAsk = 0;
  /** Requests waiting for the answer to an ask (they size it). */
  waiting = 0;

  constructor(readonly id: string) {}

  get inFlight(): number {
    return this.inFlightNow;
  }

  /** Serves one request from the grant, or says to ask the limiter, or refuses. */
  take(now: number, limits: RateLimits, mayAsk: boolean): TakeResult {
    const valid = now < this.validUntil;
    if (!valid) this.tokens = 0;
    const last = this.last;
    if (valid && last?.budget) return { kind: "refused", reason: "budget_exhausted", remaining: 0, resetS: last.budget.retryAfterS, retryAfterS: last.budget.retryAfterS, message: last.budget.message };
    if (valid && this.tokens >= 1 && this.inFlightNow < this.slots) {
      this.tokens -= 1;
      this.inFlightNow += 1;
      this.usedSinceAsk += 1;
      this.peakSinceAsk = Math.max(this.peakSinceAsk, this.inFlightNow);
      if (this.asking) this.asking.usedSinceSend += 1;
      const refreshDue = this.asking === null && now >= this.grantedAt + (this.validUntil - this.grantedAt) * REFRESH_AT;
      return { kind: "taken", remaining: Math.floor(this.tokens) + (last?.bucket ?? 0), resetS: last?.resetS ?? 0, refreshDue };
    }
    if (this.tokens < 1) {
      // The limiter said its bucket was empty: believe it until a token has refilled.
      const emptyUntil = last === null ? 0 : last.at + last.retryAfterS * 1000;
      if (last !== null && (!mayAsk || (valid && last.bucket < 1 && now < emptyUntil))) {
        const retryAfterS = Math.max(1, Math.ceil((emptyUntil - now) / 1000));
        return { kind: "refused", reason: "rate_limited", remaining: Math.floor(this.tokens) + last.bucket, resetS: last.resetS, retryAfterS, message: `more than ${limits.requestsPerMinute} requests per minute` };
      }
      return { kind: "ask" };
    }
    if (last !== null && (!mayAsk || (last.freeSlots === 0 && now - last.at < NO_SLOT_RECHECK_MS))) {
      return { kind: "refused", reason: "concurrency_limited", remaining: Math.floor(this.tokens) + last.bucket, resetS: last.resetS, retryAfterS: 1, message: `${limits.concurrentRequests} requests are in flight already` };
    }
    return { kind: "ask" };
  }

  /** A request served from the grant has ended: its slot is free again here. */
  release(): void {
    this.inFlightNow = Math.max(0, this.inFlightNow - 1);
  }

  /** Holds a grant it may serve from now (tokens or not). */
  isValid(now: number): boolean {
    return now < this.validUntil;
  }

  get isAsking(): boolean {
    return this.asking !== null;
  }

  /** The grant in force, to tell whether a newer one replaced it. */
  get currentGeneration(): number {
    return this.generation;
  }

  /** Idle, with nothing valid, yet the limiter counts slots as ours: time to give them back. */
  owesReturn(now: number): boolean {
    return this.asking === null && this.inFlightNow === 0 && this.held > 0 && now >= this.validUntil;
  }

  /**
   * Builds the next ask: sized from use since the last one (as much again, plus one, and what
   * is waiting), never more than the limits. The holder drops at once what it does not keep.
   * `final` ends the grant: everything unused goes back, slots in flight stay held.
   */
  ask(now: number, limits: RateLimits, final = false): GrantAsk {
    if (now >= this.validUntil) this.tokens = 0;
    const used = this.usedSinceAsk;
    const targetTokens = Math.min(limits.requestsPerMinute, 2 * used + 1 + this.waiting);
    const peak = Math.max(this.peakSinceAsk, this.inFlightNow + this.waiting);
    const targetSlots = Math.min(limits.concurrentRequests, peak + Math.max(1, Math.ceil(peak / 4)));
    const unused = Math.floor(this.tokens);
    const keepTokens = final ? 0 : Math.min(unused, targetTokens);
    const keepSlots = final ? this.inFlightNow : Math.max(this.inFlightNow, Math.min(this.slots, targetSlots));
    this.tokens = keepTokens;
    this.slots = keepSlots;
    this.usedSinceAsk = 0;
    this.peakSinceAsk = this.inFlightNow;
    this.asking = { sentAt: now, usedSinceSend: 0, final };
    return {
      holder: this.id,
      keepTokens,
      returnTokens: unused - keepTokens,
      keepSlots,
      inFlight: this.inFlightNow,
      wantTokens: final ? 0 : Math.max(0, targetTokens - keepTokens),
      wantSlots: final ? 0 : Math.max(0, targetSlots - keepSlots),
      used,
      final,
    };
  }

  /** The limiter's answer: the new grant counts from when the ask was sent. */
  answered(now: number, answer: GrantAnswer): void {
    const asking = this.asking;
    if (asking === null) return;
    this.asking = null;
    this.generation += 1;
    this.last = { at: now, bucket: answer.bucket, freeSlots: answer.freeSlots, resetS: answer.resetS, retryAfterS: answer.retryAfterS, budget: answer.budget };
    this.held = answer.slots;
    this.slots = answer.slots;
    if (asking.final) {
      this.tokens = 0;
      this.validUntil = 0;
      return;
    }
    this.tokens = Math.max(0, answer.carried - asking.usedSinceSend) + answer.tokens;
    this.grantedAt = asking.sentAt;
    this.validUntil = asking.sentAt + answer.ttlMs;
  }

  /** The ask got no answer: the current grant (if still valid) stays as it was trimmed. */
  failed(): void {
    this.asking = null;
  }

  /** When an unused grant should go back (the sender of the ask's own clock), or null if none. */
  returnAt(): number | null {
    return this.validUntil === 0 ? null : this.grantedAt + (this.validUntil - this.grantedAt) * RETURN_AT;
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(x)));
}
