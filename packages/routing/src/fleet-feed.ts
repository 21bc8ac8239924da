import type { FleetAnswer, NodeRecord, NodeUpdate } from "@meridian/protocol";
import { nearestRegion, type Continent } from "@meridian/regions";

/**
 * How fleet state flows from the primary Directory to the isolates, as pure code: the
 * versioned log that the primary and every replica keep, and the freshness rules of each
 * tier. The same functions drive the scale simulation (bench/scale.ts) and are meant to
 * drive the Durable Objects and the per-colo cache in workers/gateway.
 *
 *   hubs ──batches──▶ primary ──one delta frame per replica per streamMs──▶ replicas (one per continent)
 *   replica ◀──since(epoch, version), about once per colo per coloCacheTtlMs── colo cache (Cache API)
 *   colo cache ◀──every isolateRefreshMs── isolates of that colo
 *
 * The colo cache holds one entry, the colo's head: the latest answer an isolate of the colo
 * fetched, with the version it starts from. Every isolate that reads a fresh head moves to
 * its version, so the isolates of a colo stay together and the next head (fetched by one
 * of them, since that version) serves all of them again.
 */
export const FEED_TIMING = {
  /** An isolate serves from memory and refreshes in the background once its copy is this old. */
  isolateRefreshMs: 150,
  /** Older than this (an idle isolate), the copy is not trusted: the request waits for a refresh. */
  isolateMaxAgeMs: 2000,
  /** The colo's head answers the isolates of its colo for this long before one of them refetches. */
  coloCacheTtlMs: 200,
  /**
   * An isolate that finds the head stale takes a lease on it (writes it back with
   * `leaseUntil`) before fetching: until the lease ends, the other isolates of the colo keep
   * using the head instead of fetching too. Longer than an isolate→replica round trip.
   */
  coloLeaseMs: 150,
  /** The primary sends each replica at most one delta frame this often (and only when something changed). */
  streamMs: 150,
  /**
   * A replica that has heard nothing from the primary for this long asks it on its next
   * request (an idle fleet, a lost frame, a primary that restarted and has not streamed yet).
   */
  replicaSilenceMs: 1000,
} as const;

/** Replicas, one per continent: isolates ask the one of their colo's continent. */
export const REPLICAS: readonly Continent[] = ["NA", "SA", "EU", "AF", "AS", "OC"];

/** The replica an isolate at this point asks (the continent of the nearest catalog region). */
export function replicaFor(lat: number, lon: number): Continent {
  return nearestRegion(lat, lon).continent;
}

export type RefreshAction = "serve" | "serve-and-refresh" | "wait";

/** What an isolate does with its copy on a request (stale-while-revalidate). */
export function refreshAction(copy: { loaded: boolean; fetchedAt: number; refreshing: boolean }, now: number): RefreshAction {
  if (!copy.loaded || now - copy.fetchedAt > FEED_TIMING.isolateMaxAgeMs) return "wait";
  if (now - copy.fetchedAt > FEED_TIMING.isolateRefreshMs && !copy.refreshing) return "serve-and-refresh";
  return "serve";
}

/** The colo cache key of the full snapshot (cold isolates) and of the colo's head (everyone else). */
export const COLO_FULL_KEY = "fleet/full";
export const COLO_HEAD_KEY = "fleet/head";

/**
 * What the freshness rules read of a colo entry: its answer's kind and versions (never its
 * nodes), so a worker can decide from the entry's headers before it decodes the body.
 */
export interface ColoEntryHead {
  answer: Pick<FleetAnswer, "kind" | "epoch" | "version">;
  base: number;
  storedAt: number;
  leaseUntil?: number;
}

/** A colo cache entry: an answer, the version it starts from (-1 for a full copy), when it was stored. */
export interface ColoEntry extends ColoEntryHead {
  answer: FleetAnswer;
  base: number;
  storedAt: number;
  /** Set by the isolate that is fetching a newer head: until then, others keep this one. */
  leaseUntil?: number;
}

/** Whether a colo entry may bring an isolate at (epoch, version) up to date now. */
export function coloEntryServes(entry: ColoEntryHead, copy: { epoch: string | null; version: number }, now: number): boolean {
  if (now - entry.storedAt > FEED_TIMING.coloCacheTtlMs && now >= (entry.leaseUntil ?? 0)) return false;
  if (entry.answer.kind === "full") return true;
  return entry.answer.epoch === copy.epoch && entry.base <= copy.version;
}

/** The head as the isolate that fetches its successor writes it back (see coloLeaseMs). */
export function coloLease<E extends ColoEntryHead>(entry: E, now: number): E {
  return { ...entry, leaseUntil: now + FEED_TIMING.coloLeaseMs };
}

/** Whether a freshly fetched answer should become the colo's head (never a step back). */
export function coloEntryReplaces(existing: ColoEntryHead | undefined, incoming: ColoEntryHead): boolean {
  return existing === undefined || existing.answer.epoch !== incoming.answer.epoch || incoming.answer.version > existing.answer.version || incoming.storedAt - existing.storedAt > FEED_TIMING.coloCacheTtlMs;
}

/** Whether the primary sends a replica a frame now. */
export function streamFrameDue(lastSentAt: number, now: number, replicaVersion: number, primaryVersion: number): boolean {
  return primaryVersion > replicaVersion && now - lastSentAt >= FEED_TIMING.streamMs;
}

/** Where a feed stands: what the primary holds, or what it last sent a replica. */
export interface FeedPosition {
  epoch: string | null;
  version: number;
  policyVersion: number;
  carriersVersion: number;
}

/**
 * streamFrameDue for a replica whose epoch or document versions may lag too: after a primary
 * restart (another epoch: a full copy) or a policy or carrier publish (no node changed, but the
 * new versions must travel with the same freshness). Still at most one frame per streamMs.
 */
export function replicaFrameDue(lastSentAt: number, now: number, sent: FeedPosition, primary: FeedPosition): boolean {
  const behind = sent.epoch !== primary.epoch || sent.policyVersion < primary.policyVersion || sent.carriersVersion < primary.carriersVersion;
  return behind ? now - lastSentAt >= FEED_TIMING.streamMs : streamFrameDue(lastSentAt, now, sent.version, primary.version);
}

/** How many recent changes a log keeps to answer deltas; older callers get a full copy. */
export const CHANGE_LOG_LIMIT = 50_000;

/**
 * The fleet as one versioned map with a log of recent changes: what the primary Directory
 * keeps (fed by hub updates, one version per update) and what each replica keeps (fed by the
 * primary's deltas, taking the primary's epoch and versions so an isolate may move between
 * replicas). `since` answers an isolate or a replica with a delta, or a full copy when the
 * asker's version is not covered by the log.
 */
export class FleetLog {
  private readonly nodes = new Map<string, NodeRecord>();
  private epochId: string;
  private current = 0;
  private documents = { policyVersion: 0, carriersVersion: 0 };
  /** Node ids in the order they changed; changeVersions[i] is the version of change i. */
  private changedIds: string[] = [];
  private changeVersions: number[] = [];
  /** The log holds every change after this version: an asker at or past it can get a delta. */
  private floor = 0;

  constructor(epoch: string) {
    this.epochId = epoch;
  }

  get epoch(): string {
    return this.epochId;
  }

  get version(): number {
    return this.current;
  }

  get size(): number {
    return this.nodes.size;
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  records(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  get documentVersions(): { policyVersion: number; carriersVersion: number } {
    return { ...this.documents };
  }

  setDocuments(policyVersion: number, carriersVersion: number): void {
    this.documents = { policyVersion: Math.max(policyVersion, this.documents.policyVersion), carriersVersion: Math.max(carriersVersion, this.documents.carriersVersion) };
  }

  /** Primary: whole-record updates from a hub; stale ones (lower or equal seq) are ignored. Returns the new version. */
  applyUpdates(updates: readonly NodeUpdate[]): number {
    for (const update of updates) {
      const known = this.nodes.get(update.id);
      if (known !== undefined && known.seq >= update.seq) continue;
      if ("gone" in update) {
        if (known === undefined) continue;
        this.nodes.delete(update.id);
      } else this.nodes.set(update.id, update);
      this.log(update.id, this.current + 1);
    }
    this.trim();
    return this.current;
  }

  /** Replica: takes the primary's answer as it is (versions and epoch included). */
  applyAnswer(answer: FleetAnswer): void {
    if (answer.kind === "full") {
      this.nodes.clear();
      for (const node of answer.nodes) this.nodes.set(node.id, node);
      this.changedIds = [];
      this.changeVersions = [];
      this.epochId = answer.epoch;
      this.floor = answer.version;
    } else {
      for (const update of answer.updates) {
        if ("gone" in update) this.nodes.delete(update.id);
        else this.nodes.set(update.id, update);
        this.changedIds.push(update.id);
        this.changeVersions.push(answer.version);
      }
      this.trim();
    }
    this.current = answer.version;
    this.setDocuments(answer.policyVersion, answer.carriersVersion);
  }

  /** Everything changed after `version` of `epoch`, or the full fleet when that is not known here. */
  since(epoch: string | null, version: number): FleetAnswer {
    const versions = { epoch: this.epochId, version: this.current, ...this.documents };
    if (epoch !== this.epochId || version < this.floor || version > this.current) {
      return { kind: "full", ...versions, nodes: [...this.nodes.values()] };
    }
    const changed = new Set<string>();
    for (let i = this.changeVersions.length - 1; i >= 0 && (this.changeVersions[i] ?? 0) > version; i--) {
      const id = this.changedIds[i];
      if (id !== undefined) changed.add(id);
    }
    const updates: NodeUpdate[] = [];
    for (const id of changed) updates.push(this.nodes.get(id) ?? { id, region: "", gone: true, seq: Number.MAX_SAFE_INTEGER });
    return { kind: "delta", ...versions, updates };
  }

  private log(id: string, version: number): void {
    this.current = version;
    this.changedIds.push(id);
    this.changeVersions.push(version);
  }

  private trim(): void {
    if (this.changedIds.length <= CHANGE_LOG_LIMIT * 2) return;
    const drop = this.changedIds.length - CHANGE_LOG_LIMIT;
    this.floor = this.changeVersions[drop - 1] ?? this.floor;
    this.changedIds = this.changedIds.slice(-CHANGE_LOG_LIMIT);
    this.changeVersions = this.changeVersions.slice(-CHANGE_LOG_LIMIT);
  }
}
