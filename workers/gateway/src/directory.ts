import { DurableObject } from "cloudflare:workers";
import { encodeFleetAnswer, sortedById, type FleetAnswer, type NodeRecord, type NodeUpdate } from "@meridian/protocol";
import { FleetLog } from "@meridian/routing";
import { hubNamed } from "./durable";
import type { DocumentName } from "./policy-store";

/** What a gateway isolate gets back when it asks for changes since the version it holds. */
export type DirectoryAnswer = FleetAnswer;

/** Leaves remembered (oldest forgotten first) so a late record from before a leave stays out. */
const TOMBSTONE_LIMIT = 100_000;

/**
 * The fleet as one versioned map, fed by RegionHubs and read by gateway isolates.
 *
 * Node records live in memory only. A record is routable only while a hub holds the node's
 * live socket, and only hubs can say that: so after its own restart the Directory starts
 * empty (a new epoch, so isolates take a full snapshot) and asks every hub (each cell of a
 * region) for the sockets it holds now. Nothing from before a restart is ever served as live.
 */
export class Directory extends DurableObject<Env> {
  /** The map and its change log (packages/routing, shared with the scale simulation); a fresh epoch per instance. */
  private readonly fleet = new FleetLog(crypto.randomUUID());
  /** Hubs (cells of regions) that have had a node: asked for live sockets after a restart. */
  private readonly hubsSeen = new Set<string>();
  /** The seq of each node's last leave. */
  private readonly goneAt = new Map<string, number>();
  /** JSON heartbeats received per region hub, for /metrics (in memory: a counter may reset). */
  private readonly heartbeats: Record<string, number> = {};

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // SQLite calls are synchronous: the constructor finishes with the tables and versions loaded.
    // Earlier versions kept node records here and served them as live after a restart.
    ctx.storage.sql.exec("DROP TABLE IF EXISTS nodes");
    // Hub names, not regions: a crowded region has several cells. A region remembered before
    // cells existed is the name of its cell 0.
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS hubs (name TEXT PRIMARY KEY)");
    if (ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'regions'").toArray().length > 0) {
      ctx.storage.sql.exec("INSERT OR IGNORE INTO hubs (name) SELECT region FROM regions");
      ctx.storage.sql.exec("DROP TABLE regions");
    }
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    const meta = new Map([...ctx.storage.sql.exec<{ key: string; value: number }>("SELECT key, value FROM meta")].map((row) => [row.key, row.value]));
    this.fleet.setDocuments(meta.get("policy_version") ?? 0, meta.get("carriers_version") ?? 0);
    ctx.waitUntil(this.recoverFromHubs());
  }

  /**
   * Asks every hub that ever had a node for the nodes it holds live sockets for (after a
   * restart). Hubs are remembered by name (one write per hub cell, ever), so a fresh install
   * wakes no hub and a restart wakes only those that may hold sockets.
   */
  private async recoverFromHubs(): Promise<void> {
    const hubs = [...this.ctx.storage.sql.exec<{ name: string }>("SELECT name FROM hubs")].map((row) => row.name);
    for (const hub of hubs) this.hubsSeen.add(hub);
    await Promise.all(
      hubs.map(async (hub) => {
        try {
          this.applyUpdates(await hubNamed(this.env, hub).liveRecords(), hub);
        } catch (err) {
          console.error(JSON.stringify({ at: "directory.recover", hub, error: String(err) }));
        }
      }),
    );
  }

  /** Remembers a hub that has had a node, once. */
  private rememberHub(hub: string): void {
    if (this.hubsSeen.has(hub)) return;
    this.hubsSeen.add(hub);
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO hubs (name) VALUES (?)", hub);
  }

  /**
   * Applies whole-record updates from a hub (by name; a caller that names none speaks for
   * each record's region's cell 0); stale ones (lower seq) are ignored, and so is a record
   * older than the node's last leave (a late answer from before it).
   */
  applyUpdates(updates: NodeUpdate[], hub?: string): number {
    const accepted: NodeUpdate[] = [];
    for (const update of updates) {
      if ("gone" in update) {
        const known = this.fleet.get(update.id);
        if (known === undefined || known.seq >= update.seq) continue;
        this.goneAt.set(update.id, update.seq);
        if (this.goneAt.size > TOMBSTONE_LIMIT) this.goneAt.delete(this.goneAt.keys().next().value ?? "");
      } else {
        if ((this.goneAt.get(update.id) ?? -1) >= update.seq) continue;
        this.goneAt.delete(update.id);
        this.rememberHub(hub ?? update.region);
      }
      accepted.push(update);
    }
    return this.fleet.applyUpdates(accepted);
  }

  addHeartbeats(region: string, count: number): void {
    this.heartbeats[region] = (this.heartbeats[region] ?? 0) + count;
  }

  metrics(): { nodes: NodeRecord[]; heartbeats: Record<string, number> } {
    return { nodes: this.fleet.records(), heartbeats: { ...this.heartbeats } };
  }

  setDocumentVersion(name: DocumentName, version: number): void {
    const current = this.fleet.documentVersions;
    if (version <= (name === "policy" ? current.policyVersion : current.carriersVersion)) return;
    this.fleet.setDocuments(name === "policy" ? version : 0, name === "carriers" ? version : 0);
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", `${name}_version`, version);
  }

  /** Everything changed after `version` of `epoch`, or the full fleet when that is not known. */
  snapshotSince(epoch: string | null, version: number): DirectoryAnswer {
    return this.fleet.since(epoch, version);
  }

  /**
   * The same answer in the compact binary encoding (packages/protocol fleet-codec: about
   * 20 bytes per node in a full copy, deltas by the change): what isolates refresh with.
   */
  feedSince(epoch: string | null, version: number): Uint8Array {
    const answer = this.fleet.since(epoch, version);
    return encodeFleetAnswer(answer.kind === "full" ? { ...answer, nodes: sortedById(answer.nodes) } : answer);
  }
}
