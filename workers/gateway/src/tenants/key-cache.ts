import { waitWhile } from "../own-timers";
import { sameHash } from "./keys";
import type { KeyStore, ResolvedKey } from "./types";

/** Past this age the cache is refreshed in the background, the request does not wait. */
export const SYNC_SOFT_MS = 250;
/**
 * Past this age (since the last sync was sent) a request waits for a sync before trusting the
 * cache: with the store's answer at most this old, a revocation reaches every isolate within 1 s.
 */
export const SYNC_HARD_MS = 750;
/** Unknown keys are remembered (so a flood of bad keys does not reach the store) up to this many. */
const NEGATIVE_LIMIT = 10_000;
const POSITIVE_LIMIT = 100_000;

/**
 * This isolate's cache of key hash -> tenant, kept true by polling the TenantStore's change feed
 * (revoked keys, edited or deleted tenants, new keys). Key last-used times ride on the same poll.
 */
export class TenantKeyCache<E> {
  private readonly known = new Map<string, ResolvedKey>();
  private readonly unknown = new Set<string>();
  private seq = -1;
  private syncSentAt = Number.NEGATIVE_INFINITY;
  private syncing: Promise<void> | null = null;
  private used = new Map<string, number>();
  private flushScheduled = false;
  /** Lookups that had to ask the store (cache misses), for the benchmark. */
  resolveCalls = 0;

  constructor(private readonly storeOf: (env: E) => KeyStore) {}

  async lookup(env: E, hash: string, waitUntil: (p: Promise<unknown>) => void, now = Date.now()): Promise<ResolvedKey | null> {
    const age = now - this.syncSentAt;
    if (age > SYNC_HARD_MS) await this.sync(env);
    else if (age > SYNC_SOFT_MS) waitUntil(this.sync(env).catch((err) => console.warn(JSON.stringify({ at: "tenants.sync", error: String(err) }))));
    const cached = this.known.get(hash);
    // Found by map lookup; the stored hash is still compared in constant time.
    if (cached !== undefined) return sameHash(cached.hash, hash) ? this.markUsed(env, cached, now, waitUntil) : null;
    if (this.unknown.has(hash)) return null;
    this.resolveCalls++;
    const resolved = await this.storeOf(env).resolve(hash);
    if (resolved === null) {
      if (this.unknown.size >= NEGATIVE_LIMIT) this.unknown.clear();
      this.unknown.add(hash);
      return null;
    }
    if (this.known.size >= POSITIVE_LIMIT) this.known.clear();
    this.known.set(hash, resolved);
    return this.markUsed(env, resolved, now, waitUntil);
  }

  /**
   * One poll at a time. A caller that finds one under way waits for it on timers of its own
   * (the runtime cancels a continuation that another request's I/O resolves), then polls
   * itself if that one did not bring the cache up to date.
   */
  async sync(env: E): Promise<void> {
    const underWay = this.syncing;
    if (underWay === null) {
      const syncing = this.poll(env).finally(() => (this.syncing = null));
      this.syncing = syncing;
      return syncing;
    }
    const sentBefore = this.syncSentAt;
    // A poll that never ended (its request was cancelled) is abandoned, not waited on forever.
    if (!(await waitWhile(() => this.syncing === underWay, SYNC_HARD_MS))) this.syncing = null;
    if (this.syncSentAt === sentBefore) return this.sync(env);
  }

  private async poll(env: E): Promise<void> {
    const sentAt = Date.now();
    const used = Object.fromEntries(this.used);
    this.used = new Map();
    const changes = await this.storeOf(env).sync(this.seq, used);
    if (changes.reset) {
      this.known.clear();
      this.unknown.clear();
    } else if (changes.tenants.length + changes.hashes.length > 0) {
      const tenants = new Set(changes.tenants);
      for (const hash of changes.hashes) this.known.delete(hash);
      for (const [hash, entry] of this.known) if (tenants.has(entry.tenant.id)) this.known.delete(hash);
      // A new key may be one this isolate was shown before it existed.
      for (const hash of changes.hashes) this.unknown.delete(hash);
    }
    this.seq = changes.seq;
    this.syncSentAt = sentAt;
  }

  /**
   * Last-used times ride on the next sync; an isolate that goes quiet sends them one soft
   * interval later (at most one such flush in flight), so a key's lastUsedAt is never stale
   * for long.
   */
  private markUsed(env: E, entry: ResolvedKey, now: number, waitUntil: (p: Promise<unknown>) => void): ResolvedKey {
    this.used.set(entry.keyId, now);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      waitUntil(
        new Promise((resolve) => setTimeout(resolve, SYNC_SOFT_MS))
          .then(() => (this.used.size > 0 ? this.sync(env) : undefined))
          .catch((err) => console.warn(JSON.stringify({ at: "tenants.flush-used", error: String(err) })))
          .finally(() => (this.flushScheduled = false)),
      );
    }
    return entry;
  }
}
