import { DurableObject } from "cloudflare:workers";
import type { NodeRecord, NodeUpdate } from "@meridian/protocol";
import type { Env } from "./env";
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

/** How many recent changes are kept to answer deltas; older callers get a full snapshot. */
const CHANGE_LOG_LIMIT = 20_000;

/**
 * The fleet as one versioned map, fed by RegionHubs and read by gateway isolates.
 * Only membership and health changes are written to SQLite; load figures live in memory
 * and are refreshed by the next heartbeat after a restart.
 */
export class Directory extends DurableObject<Env> {
  private readonly nodes = new Map<string, NodeRecord>();
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
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, record TEXT NOT NULL)");
      ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
      for (const row of ctx.storage.sql.exec<{ key: string; value: number }>("SELECT key, value FROM meta")) {
        if (row.key === "policy_version") this.documents.policyVersion = row.value;
        if (row.key === "carriers_version") this.documents.carriersVersion = row.value;
      }
      for (const row of ctx.storage.sql.exec<{ record: string }>("SELECT record FROM nodes")) {
        const record = JSON.parse(row.record) as NodeRecord;
        this.nodes.set(record.id, record);
      }
    });
  }

  /** Applies whole-record updates from a hub; stale ones (lower seq) are ignored. */
  applyUpdates(updates: NodeUpdate[]): number {
    for (const update of updates) {
      const current = this.nodes.get(update.id);
      if (current !== undefined && current.seq >= update.seq) continue;
      if ("gone" in update) {
        if (current === undefined) continue;
        this.nodes.delete(update.id);
        this.ctx.storage.sql.exec("DELETE FROM nodes WHERE id = ?", update.id);
      } else {
        this.nodes.set(update.id, update);
        if (current === undefined || current.health !== update.health || current.endpoint !== update.endpoint) {
          this.ctx.storage.sql.exec("INSERT OR REPLACE INTO nodes (id, record) VALUES (?, ?)", update.id, JSON.stringify(update));
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
