import { DurableObject } from "cloudflare:workers";
import { encodeFleetAnswer, sortedById, type FleetAnswer, type NodeRecord, type NodeUpdate } from "@meridian/protocol";
import { FEED_TIMING, FleetLog, replicaFrameDue, type FeedPosition } from "@meridian/routing";
import { directoryReplica, hubNamed } from "./durable";
import type { DocumentName } from "./policy-store";

/** What a gateway isolate gets back when it asks for changes since the version it holds. */
export type DirectoryAnswer = FleetAnswer;

/**
 * An answer in the compact binary encoding (packages/protocol fleet-codec: about 20 bytes per
 * node in a full copy, deltas by the change), full copies in id order: what the primary and
 * the replicas answer isolates with, and what the primary streams to replicas.
 */
export function encodeForFeed(answer: FleetAnswer): Uint8Array {
  return encodeFleetAnswer(answer.kind === "full" ? { ...answer, nodes: sortedById(answer.nodes) } : answer);
}

/** What the primary last sent a replica, and when. */
interface ReplicaFeed extends FeedPosition {
  lastSentAt: number;
}

/** More replica names than this is a bug (production has one per continent): refuse new ones. */
const REPLICA_LIMIT = 64;

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
  /**
   * The replicas this primary streams to, by name (their continent), and what each was last
   * sent. Names are stored (a replica subscribes by pulling once); positions are not: after a
   * restart every replica is behind by an epoch and gets a full copy.
   */
  private readonly replicas = new Map<string, ReplicaFeed>();
  private streamScheduled = false;
  /** Settles when the post-restart hub recovery has run: the first frames wait for it. */
  private readonly recovered: Promise<void>;

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
    this.recovered = this.recoverFromHubs();
    ctx.waitUntil(this.recovered);
    this.loadReplicas();
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
    const before = this.fleet.version;
    const version = this.fleet.applyUpdates(accepted);
    if (version !== before) this.streamSoon();
    return version;
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
    this.streamSoon();
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
    return encodeForFeed(this.fleet.since(epoch, version));
  }

  // ---- the stream to the replicas (directory-replica.ts) ----------------------------------

  /** Known replica names; each is behind (another epoch) until its first frame or pull. */
  private loadReplicas(): void {
    this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS replicas (name TEXT PRIMARY KEY)");
    for (const row of this.ctx.storage.sql.exec<{ name: string }>("SELECT name FROM replicas")) {
      this.replicas.set(row.name, unfedReplica());
    }
    // After a restart the replicas still serve the old epoch: they get the new one (a full copy) soon.
    this.streamSoon();
  }

  /**
   * A replica asks for what changed since its copy (it was empty, silent or behind): the same
   * answer as feedSince, and from now on the stream sends it frames. Waits for the hub
   * recovery after a restart (up to a second), so a first copy is not needlessly empty.
   */
  async replicaPull(name: string, epoch: string | null, version: number): Promise<Uint8Array> {
    await Promise.race([this.recovered, scheduler.wait(1000)]);
    let feed = this.replicas.get(name);
    if (feed === undefined) {
      if (this.replicas.size >= REPLICA_LIMIT) throw new Error(`more than ${REPLICA_LIMIT} directory replicas`);
      this.ctx.storage.sql.exec("INSERT OR IGNORE INTO replicas (name) VALUES (?)", name);
      feed = unfedReplica();
      this.replicas.set(name, feed);
    }
    const answer = this.fleet.since(epoch, version);
    Object.assign(feed, this.positionOf(answer), { lastSentAt: Date.now() });
    return encodeForFeed(answer);
  }

  private positionOf(answer: FleetAnswer): FeedPosition {
    return { epoch: answer.epoch, version: answer.version, policyVersion: answer.policyVersion, carriersVersion: answer.carriersVersion };
  }

  private get position(): FeedPosition {
    return { epoch: this.fleet.epoch, version: this.fleet.version, ...this.fleet.documentVersions };
  }

  /**
   * Schedules the next round of frames with an alarm: at most one round per streamMs, however
   * many updates arrive (never a write or a call per update).
   */
  private streamSoon(): void {
    if (this.streamScheduled || this.replicas.size === 0) return;
    this.streamScheduled = true;
    const lastRound = Math.max(...[...this.replicas.values()].map((feed) => feed.lastSentAt));
    this.ctx.storage.setAlarm(Math.max(Date.now(), lastRound + FEED_TIMING.streamMs)).catch((err: unknown) => {
      this.streamScheduled = false;
      console.error(JSON.stringify({ at: "directory.stream.schedule", error: String(err) }));
    });
  }

  /** One round of the stream: a frame to each replica that is behind and due. */
  override async alarm(): Promise<void> {
    this.streamScheduled = false;
    await this.recovered;
    const now = Date.now();
    // Replicas at one position get the same frame: encoded once per round.
    const frames = new Map<string, Uint8Array>();
    await Promise.all([...this.replicas].map(([name, feed]) => this.streamTo(name, feed, now, frames)));
    const here = this.position;
    if ([...this.replicas.values()].some((feed) => replicaFrameDue(Number.NEGATIVE_INFINITY, now, feed, here))) this.streamSoon();
  }

  private async streamTo(name: string, feed: ReplicaFeed, now: number, frames: Map<string, Uint8Array>): Promise<void> {
    if (!replicaFrameDue(feed.lastSentAt, now, feed, this.position)) return;
    feed.lastSentAt = now;
    const replica = directoryReplica(this.env, name);
    const encoded = (epoch: string | null, version: number): { full: boolean; bytes: Uint8Array } => {
      const frame = this.fleet.since(epoch, version);
      const key = frame.kind === "full" ? "full" : `${version}`;
      let bytes = frames.get(key);
      if (bytes === undefined) frames.set(key, (bytes = encodeForFeed(frame)));
      return { full: frame.kind === "full", bytes };
    };
    try {
      const frame = encoded(feed.epoch, feed.version);
      let held = await replica.applyFrame(frame.full ? null : feed.version, frame.bytes);
      // The delta did not join (the replica restarted, or missed a frame): a full copy now.
      held ??= await replica.applyFrame(null, encoded(null, 0).bytes);
      if (held !== null) Object.assign(feed, held);
    } catch (err) {
      // The next round tries again from the same position (a delta joins onto what it may have taken).
      console.error(JSON.stringify({ at: "directory.stream", replica: name, error: String(err) }));
    }
  }
}

/** A replica the stream has sent nothing yet: behind on every count, due at once. */
function unfedReplica(): ReplicaFeed {
  return { epoch: null, version: 0, policyVersion: 0, carriersVersion: 0, lastSentAt: Number.NEGATIVE_INFINITY };
}
