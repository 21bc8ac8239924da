import { DurableObject } from "cloudflare:workers";
import { encodeFleetAnswer, sortedById, type FleetAnswer, type NodeRecord, type NodeUpdate } from "@meridian/protocol";
import { FleetLog } from "@meridian/routing";
import { regionHub } from "./durable";
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
 * empty (a new epoch, so isolates take a full snapshot) and asks every region hub for the
 * sockets it holds now. Nothing from before a restart is ever served as live.
 */
export class Directory extends DurableObject<Env> {
  /** The map and its change log (packages/routing, shared with the scale simulation); a fresh epoch per instance. */
  private readonly fleet = new FleetLog(crypto.randomUUID());
  /** Regions that have had a node: their hubs are asked for live sockets after a restart. */
  private readonly regionsSeen = new Set<string>();
  /** The seq of each node's last leave. */
  private readonly goneAt = new Map<string, number>();
  /** JSON heartbeats received per region hub, for /metrics (in memory: a counter may reset). */
  private readonly heartbeats: Record<string, number> = {};

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // SQLite calls are synchronous: the constructor finishes with the tables and versions loaded.
    // Earlier versions kept node records here and served them as live after a restart.
    ctx.storage.sql.exec("DROP TABLE IF EXISTS nodes");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS regions (region TEXT PRIMARY KEY)");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    const meta = new Map([...ctx.storage.sql.exec<{ key: string; value: number }>("SELECT key, value FROM meta")].map((row) => [row.key, row.value]));
    this.fleet.setDocuments(meta.get("policy_version") ?? 0, meta.get("carriers_version") ?? 0);
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

  /**
   * Applies whole-record updates from a hub; stale ones (lower seq) are ignored, and so is a
   * record older than the node's last leave (a late answer from before it).
   */
  applyUpdates(updates: NodeUpdate[]): number {
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
        if (!this.regionsSeen.has(update.region)) {
          this.regionsSeen.add(update.region);
          this.ctx.storage.sql.exec("INSERT OR IGNORE INTO regions (region) VALUES (?)", update.region);
        }
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
