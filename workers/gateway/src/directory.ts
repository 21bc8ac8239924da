import { DurableObject } from "cloudflare:workers";
import type { NodeRecord, NodeUpdate } from "@meridian/protocol";
import { regionHub } from "./durable";
import type { DocumentName } from "./policy-store";

/** What a gateway isolate gets back when it asks for changes since the version it holds. */
export type DirectoryAnswer =
  | ({ kind: "full"; epoch: string; version: number; nodes: NodeRecord[] } & DocumentVersions)
  | ({ kind: "delta"; epoch: string; version: number; updates: NodeUpdate[] } & DocumentVersions);

/** Latest published versions of the documents isolates load (policy, carrier partners). */
export interface DocumentVersions {
  policyVersion: number;
  carriersVersion: number;
}

/** Leaves remembered (oldest forgotten first) so a late record from before a leave stays out. */
const TOMBSTONE_LIMIT = 100_000;
/** How many recent changes are kept to answer deltas; older callers get a full snapshot. */
export const CHANGE_LOG_LIMIT = 20_000;

/**
 * The fleet as one versioned map, fed by RegionHubs and read by gateway isolates.
 *
 * Node records live in memory only. A record is routable only while a hub holds the node's
 * live socket, and only hubs can say that: so after its own restart the Directory starts
 * empty (a new epoch, so isolates take a full snapshot) and asks every region hub for the
 * sockets it holds now. Nothing from before a restart is ever served as live.
 */
export class Directory extends DurableObject<Env> {
  private readonly nodes = new Map<string, NodeRecord>();
  /** Regions that have had a node: their hubs are asked for live sockets after a restart. */
  private readonly regionsSeen = new Set<string>();
  /** The seq of each node's last leave. */
  private readonly goneAt = new Map<string, number>();
  /** A fresh epoch per instance: versions are comparable only within one epoch. */
  private readonly epoch = crypto.randomUUID();
  private version = 0;
  /** Latest published document versions; snapshots carry them so isolates know when to reload. */
  private readonly documents: DocumentVersions = { policyVersion: 0, carriersVersion: 0 };
  /** JSON heartbeats received per region hub, for /metrics (in memory: a counter may reset). */
  private readonly heartbeats: Record<string, number> = {};
  /** Node ids in the order they changed; changeVersions[i] is the version of change i. */
  private changedIds: string[] = [];
  private changeVersions: number[] = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // SQLite calls are synchronous: the constructor finishes with the tables and versions loaded.
    // Earlier versions kept node records here and served them as live after a restart.
    ctx.storage.sql.exec("DROP TABLE IF EXISTS nodes");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS regions (region TEXT PRIMARY KEY)");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    for (const row of ctx.storage.sql.exec<{ key: string; value: number }>("SELECT key, value FROM meta")) {
      if (row.key === "policy_version") this.documents.policyVersion = row.value;
      if (row.key === "carriers_version") this.documents.carriersVersion = row.value;
    }
    ctx.waitUntil(this.recoverFromHubs());
  }

  /**
   * Asks the hub of every region that ever had a node for the nodes it holds live sockets
   * for (after a restart). Regions are remembered (one write per region, ever), so a fresh
   * install wakes no hub and a restart wakes only those that may hold sockets.
   */
  private async recoverFromHubs(): Promise<void> {
    const regions = [...this.ctx.storage.sql.exec<{ region: string }>("SELECT region FROM regions")].map((row) => row.region);
    for (const region of regions) this.regionsSeen.add(region);
    await Promise.all(
      regions.map(async (region) => {
        try {
          this.applyUpdates(await regionHub(this.env, region).liveRecords());
        } catch (err) {
          console.error(JSON.stringify({ at: "directory.recover", region, error: String(err) }));
        }
      }),
    );
  }

  /** Applies whole-record updates from a hub; stale ones (lower seq) are ignored. */
  applyUpdates(updates: NodeUpdate[]): number {
    for (const update of updates) {
      const current = this.nodes.get(update.id);
      if (current !== undefined && current.seq >= update.seq) continue;
      if ("gone" in update) {
        if (current === undefined) continue;
        this.nodes.delete(update.id);
        this.goneAt.set(update.id, update.seq);
        if (this.goneAt.size > TOMBSTONE_LIMIT) this.goneAt.delete(this.goneAt.keys().next().value ?? "");
      } else {
        // A record older than the node's leave (a late answer from before it) stays out.
        if ((this.goneAt.get(update.id) ?? -1) >= update.seq) continue;
        this.goneAt.delete(update.id);
        this.nodes.set(update.id, update);
        if (!this.regionsSeen.has(update.region)) {
          this.regionsSeen.add(update.region);
          this.ctx.storage.sql.exec("INSERT OR IGNORE INTO regions (region) VALUES (?)", update.region);
        }
      }
      this.version++;
      this.changedIds.push(update.id);
      this.changeVersions.push(this.version);
    }
    if (this.changedIds.length > CHANGE_LOG_LIMIT * 2) {
      this.changedIds = this.changedIds.slice(-CHANGE_LOG_LIMIT);
      this.changeVersions = this.changeVersions.slice(-CHANGE_LOG_LIMIT);
    }
    return this.version;
  }

  addHeartbeats(region: string, count: number): void {
    this.heartbeats[region] = (this.heartbeats[region] ?? 0) + count;
  }

  metrics(): { nodes: NodeRecord[]; heartbeats: Record<string, number> } {
    return { nodes: [...this.nodes.values()], heartbeats: { ...this.heartbeats } };
  }

  setDocumentVersion(name: DocumentName, version: number): void {
    const field = name === "policy" ? "policyVersion" : "carriersVersion";
    if (version <= this.documents[field]) return;
    this.documents[field] = version;
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", `${name}_version`, version);
  }

  /** Everything changed after `version` of `epoch`, or the full fleet when that is not known. */
  snapshotSince(epoch: string | null, version: number): DirectoryAnswer {
    const oldest = this.changeVersions[0] ?? this.version + 1;
    if (epoch !== this.epoch || version < oldest - 1 || version > this.version) {
      return { kind: "full", epoch: this.epoch, version: this.version, ...this.documents, nodes: [...this.nodes.values()] };
    }
    const changed = new Set<string>();
    for (let i = this.changeVersions.length - 1; i >= 0 && (this.changeVersions[i] ?? 0) > version; i--) {
      const id = this.changedIds[i];
      if (id !== undefined) changed.add(id);
    }
    const updates: NodeUpdate[] = [];
    for (const id of changed) {
      const record = this.nodes.get(id);
      updates.push(record ?? { id, region: "", gone: true, seq: Number.MAX_SAFE_INTEGER });
    }
    return { kind: "delta", epoch: this.epoch, version: this.version, ...this.documents, updates };
  }
}
