import { compilePolicy, type CompiledPolicy } from "@meridian/policy";
import type { CarrierPartner } from "@meridian/protocol";
import { COLO_HEAD_KEY, FleetIndex, coloEntryReplaces, coloEntryServes, coloLease, refreshAction, replicaFor, type ColoEntryHead } from "@meridian/routing";
import { decodeFleetAnswer, type FleetAnswer } from "@meridian/protocol";
import type { Continent } from "@meridian/regions";
import { carrierStore, directoryReplica, policyStore } from "./durable";

/** The replica asked when no request has said where this isolate is (no location, Tor): never fail for it. */
export const DEFAULT_REPLICA: Continent = "NA";

/** The colo cache (Cache API) this isolate shares with the others of its colo; null where there is none. */
export type ColoCacheSource = () => Promise<Cache | null>;

/**
 * The Cache API's cache for fleet heads. `caches` is per colo on Cloudflare (and a no-op on
 * workers.dev, where every isolate then asks its replica); wrangler dev and the vitest pool
 * provide it locally. Where it is missing or refuses, isolates ask their replica directly.
 */
/** How often an isolate re-reads which replica is nearest (from its requests' location). */
const RELOCATE_MS = 10_000;

export const coloCache: ColoCacheSource = async () => (typeof caches === "undefined" ? null : caches.open("meridian-fleet"));

/** After the Cache API throws, isolates ask their replica directly for this long before trying it again. */
const COLO_CACHE_RETRY_MS = 60_000;
/** The head's key: a URL, as the Cache API wants; never fetched. */
const HEAD_URL = `https://fleet.meridian.internal/${COLO_HEAD_KEY}`;
/** How long the cache keeps a head at all; whether it still serves is coloEntryServes' call (storedAt). */
const HEAD_CACHE_SECONDS = 60;
const H = { epoch: "x-fleet-epoch", version: "x-fleet-version", kind: "x-fleet-kind", base: "x-fleet-base", storedAt: "x-fleet-stored-at", leaseUntil: "x-fleet-lease-until" } as const;

function headerInt(headers: Headers, name: string): number | null {
  const raw = headers.get(name);
  if (raw === null || !/^-?\d{1,16}$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}

/** A head's versions and times from its headers (parsed: an entry that does not parse is no head). */
export function readHeadHeaders(headers: Headers): ColoEntryHead | null {
  const epoch = headers.get(H.epoch);
  const kind = headers.get(H.kind);
  const version = headerInt(headers, H.version);
  const base = headerInt(headers, H.base);
  const storedAt = headerInt(headers, H.storedAt);
  const leaseUntil = headerInt(headers, H.leaseUntil);
  if (epoch === null || epoch === "" || (kind !== "full" && kind !== "delta") || version === null || base === null || storedAt === null) return null;
  return { answer: { kind, epoch, version }, base, storedAt, ...(leaseUntil === null ? {} : { leaseUntil }) };
}

export function headHeaders(head: ColoEntryHead): Headers {
  const headers = new Headers({
    "content-type": "application/octet-stream",
    "cache-control": `max-age=${HEAD_CACHE_SECONDS}`,
    [H.epoch]: head.answer.epoch,
    [H.kind]: head.answer.kind,
    [H.version]: String(head.answer.version),
    [H.base]: String(head.base),
    [H.storedAt]: String(head.storedAt),
  });
  if (head.leaseUntil !== undefined) headers.set(H.leaseUntil, String(head.leaseUntil));
  return headers;
}

export interface EdgeView {
  index: FleetIndex;
  /** null until a policy version has been loaded: callers must then refuse (fail closed). */
  policy: CompiledPolicy | null;
  /** Carrier partners by id, as of `carriersVersion` (0: none published yet). */
  carriers: ReadonlyMap<string, CarrierPartner>;
  carriersVersion: number;
}

const log = (at: string, err: unknown, extra: Record<string, unknown> = {}) => console.error(JSON.stringify({ at, error: String(err), ...extra }));

/**
 * What this isolate knows: a versioned copy of the Directory's fleet and the compiled
 * policy, refreshed in the background (stale-while-revalidate). The snapshot carries the
 * policy version, so a publish reaches every isolate with its next refresh. Only a cold
 * or long-idle isolate waits.
 *
 * A refresh reads the colo's head in the Cache API first (the latest answer an isolate of
 * this colo fetched); only when that is stale does it ask the replica of its continent, and
 * it leases the head so the colo's other isolates do not ask too (packages/routing
 * fleet-feed.ts decides: coloEntryServes, coloLease, coloEntryReplaces).
 */
export class FleetCache {
  private epoch: string | null = null;
  private version = 0;
  private index: FleetIndex | null = null;
  private policy: CompiledPolicy | null = null;
  private carriers: ReadonlyMap<string, CarrierPartner> = new Map();
  private carriersVersion = 0;
  private fetchedAt = 0;
  private refreshing = false;
  /** The continent of the latest located request (a colo's requests come from around it). */
  private replica: Continent = DEFAULT_REPLICA;
  private locatedAt = Number.NEGATIVE_INFINITY;
  /** Answers taken from the colo head and from the replica: how well the colo cache works here. */
  readonly sources = { coloHead: 0, replica: 0 };
  /** Until then the colo cache is not tried (it threw). */
  private cacheOffUntil = 0;

  constructor(private readonly cacheSource: ColoCacheSource = coloCache) {}

  /** Moves this isolate to the replica of where its requests come from (request.cf, or the dev override). */
  locate(where: { lat: number; lon: number } | null, now = Date.now()): void {
    // Once in a while, not per request: the nearest-region scan costs tens of µs, and an
    // isolate's colo does not move.
    if (where === null || now - this.locatedAt < RELOCATE_MS) return;
    this.locatedAt = now;
    this.replica = replicaFor(where.lat, where.lon);
  }

  get replicaName(): Continent {
    return this.replica;
  }

  /**
   * The view, synchronously when this isolate's copy is warm (the hot path: no await, no
   * promise), or a promise when it must wait for the Directory first.
   */
  view(env: Env, waitUntil: (p: Promise<unknown>) => void, now = Date.now()): EdgeView | Promise<EdgeView> {
    const loaded = this.index !== null && this.policy !== null;
    const action = refreshAction({ loaded, fetchedAt: this.fetchedAt, refreshing: this.refreshing }, now);
    if (action === "wait") {
      // Cold: if that fails, the view has no policy and the caller refuses (fail closed). Idle
      // too long: better an old fleet than none if the replica is briefly unreachable; the
      // proxy's retry covers dead nodes.
      return this.refresh(env).then(
        () => this.current(),
        (err: unknown) => (log("fleet.refresh", err, loaded ? { stale: true } : { cold: true }), this.current()),
      );
    }
    if (action === "serve-and-refresh") waitUntil(this.refresh(env).catch((err: unknown) => log("fleet.refresh", err)));
    return this.current();
  }

  /** The view, waiting when it must (callers off the hot path). */
  async get(env: Env, waitUntil: (p: Promise<unknown>) => void, now = Date.now()): Promise<EdgeView> {
    return this.view(env, waitUntil, now);
  }

  private current(): EdgeView {
    return { index: this.index ?? new FleetIndex([]), policy: this.policy, carriers: this.carriers, carriersVersion: this.carriersVersion };
  }

  get snapshotVersion(): number {
    return this.version;
  }

  get policyVersion(): number | null {
    return this.policy?.version ?? null;
  }

  async refresh(env: Env): Promise<void> {
    this.refreshing = true;
    try {
      const [answer] = await Promise.all([this.fetchFleet(env), this.policy === null ? this.loadPolicy(env) : null]);
      if (answer !== null) this.apply(answer);
      this.fetchedAt = Date.now();
      if (answer === null) return;
      if (this.policy !== null && answer.policyVersion > this.policy.version) {
        // A failed load keeps the last good version in force.
        await this.loadPolicy(env).catch((err: unknown) => log("policy.load", err, { wanted: answer.policyVersion, inForce: this.policy?.version }));
      }
      if (answer.carriersVersion > this.carriersVersion) {
        await this.loadCarriers(env).catch((err: unknown) => log("carriers.load", err, { wanted: answer.carriersVersion, inForce: this.carriersVersion }));
      }
    } finally {
      this.refreshing = false;
    }
  }

  /**
   * The colo head when it serves this copy (null: it holds nothing newer), else the replica's
   * answer, which then becomes the head if it is newer than the one there.
   */
  private async fetchFleet(env: Env): Promise<FleetAnswer | null> {
    const cache = Date.now() < this.cacheOffUntil ? null : await this.cacheSource().catch((err: unknown) => this.cacheFailed(err));
    if (cache !== null) {
      const fromHead = await this.fromColoHead(cache).catch((err: unknown) => (this.cacheFailed(err), undefined));
      if (fromHead !== undefined) return fromHead;
    }
    const base = this.version;
    const epoch = this.epoch;
    const bytes = await directoryReplica(env, this.replica).feedSince(epoch, base);
    const answer = decodeFleetAnswer(bytes);
    this.sources.replica++;
    if (cache !== null) {
      const head = { answer, base: answer.kind === "full" ? -1 : base, storedAt: Date.now() };
      await this.storeHead(cache, head, bytes).catch((err: unknown) => this.cacheFailed(err));
    }
    return answer;
  }

  /**
   * A Cache API that throws (bare workerd with no cache configured: "No Cache was
   * configured") is left alone for a minute, with one log line: this isolate asks its
   * replica directly meanwhile, which costs freshness nothing and the replica more requests.
   */
  private cacheFailed(err: unknown): null {
    this.cacheOffUntil = Date.now() + COLO_CACHE_RETRY_MS;
    log("fleet.colo_cache", err, { retryInMs: COLO_CACHE_RETRY_MS });
    return null;
  }

  /**
   * What the colo head gives this copy: an answer, null (fresh, but nothing newer than this
   * copy), or undefined (no head that serves: this isolate fetches, and leases the head first).
   */
  private async fromColoHead(cache: Cache): Promise<FleetAnswer | null | undefined> {
    const hit = await cache.match(HEAD_URL);
    if (hit === undefined) return undefined;
    const head = readHeadHeaders(hit.headers);
    const now = Date.now();
    if (head === null || !coloEntryServes(head, { epoch: this.epoch, version: this.version }, now)) {
      // Stale: the colo's other isolates keep using it until this one's fetch replaces it.
      if (head !== null) await cache.put(HEAD_URL, new Response(hit.body, { headers: headHeaders(coloLease(head, now)) }));
      else await hit.body?.cancel();
      return undefined;
    }
    this.sources.coloHead++;
    if (head.answer.epoch === this.epoch && head.answer.version <= this.version) {
      await hit.body?.cancel();
      return null;
    }
    return decodeFleetAnswer(new Uint8Array(await hit.arrayBuffer()));
  }

  private async storeHead(cache: Cache, head: ColoEntryHead, bytes: Uint8Array): Promise<void> {
    const existing = await cache.match(HEAD_URL);
    const current = existing === undefined ? null : readHeadHeaders(existing.headers);
    await existing?.body?.cancel();
    if (!coloEntryReplaces(current ?? undefined, head)) return;
    await cache.put(HEAD_URL, new Response(bytes, { headers: headHeaders(head) }));
  }

  private async loadPolicy(env: Env): Promise<void> {
    const current = await policyStore(env).current();
    if (this.policy === null || current.version > this.policy.version) {
      this.policy = compilePolicy(current.document, current.version);
      console.log(JSON.stringify({ at: "policy.loaded", version: current.version }));
    }
  }

  private async loadCarriers(env: Env): Promise<void> {
    const current = await carrierStore(env).current();
    if (current.version > this.carriersVersion) {
      this.carriers = new Map(current.document.partners.map((p) => [p.id, p]));
      this.carriersVersion = current.version;
      console.log(JSON.stringify({ at: "carriers.loaded", version: current.version, partners: this.carriers.size }));
    }
  }

  /**
   * A full answer builds a new index; a delta is applied to the one in place (decisions are
   * synchronous, so each sees one version).
   */
  private apply(answer: FleetAnswer): void {
    if (answer.kind === "full") this.index = new FleetIndex(answer.nodes);
    else (this.index ??= new FleetIndex([])).apply(answer.updates);
    this.epoch = answer.epoch;
    this.version = answer.version;
  }
}
