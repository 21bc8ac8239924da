import { DurableObject } from "cloudflare:workers";
import { decodeFleetAnswer, type FleetAnswer } from "@meridian/protocol";
import { FEED_TIMING, FleetLog, type FeedPosition } from "@meridian/routing";
import { encodeForFeed } from "./directory";
import { directory } from "./durable";

/** What a replica holds after a frame: the primary records it to know what to send next. */
export type ReplicaPosition = FeedPosition & { epoch: string };

const log = (at: string, err: unknown, extra: Record<string, unknown> = {}) => console.error(JSON.stringify({ at, error: String(err), ...extra }));

/**
 * A copy of the primary Directory near the isolates, one per continent (named by continent,
 * placed with a locationHint: see durable.ts). It keeps a FleetLog with the primary's epoch
 * and versions, fed by the primary's delta frames (at most one per FEED_TIMING.streamMs),
 * and answers `feedSince` exactly like the primary, so an isolate does not care which it asks
 * and may move between replicas.
 *
 * State is in memory only, like the primary's: a restarted replica is empty and pulls a full
 * copy from the primary before it answers anyone, which also (re)subscribes it to the stream.
 */
export class DirectoryReplica extends DurableObject<Env> {
  private readonly fleet = new FleetLog("unloaded");
  private loaded = false;
  /** When the primary last sent a frame or answered a pull. */
  private heardAt = 0;
  private lastPullAt = Number.NEGATIVE_INFINITY;
  private pulling: Promise<void> | null = null;

  /** This replica's name (its continent in production): the primary streams to it by that name. */
  private get name(): string {
    const name = this.ctx.id.name;
    if (name === undefined) throw new Error("a DirectoryReplica must be reached by name (durable.ts directoryReplica)");
    return name;
  }

  /**
   * Everything changed after `version` of `epoch`, in the fleet codec, like Directory.feedSince.
   * An empty replica, or one behind its asker (it missed a frame), first catches up from the
   * primary; one that has heard nothing for replicaSilenceMs asks it in the background.
   */
  async feedSince(epoch: string | null, version: number): Promise<Uint8Array> {
    const now = Date.now();
    if (!this.loaded || (epoch === this.fleet.epoch && version > this.fleet.version)) {
      try {
        await this.pull();
      } catch (err) {
        // Better the copy it has than none; an empty replica has nothing to answer with.
        if (!this.loaded) throw err;
        log("replica.pull", err, { replica: this.name });
      }
    } else if ((now - this.heardAt > FEED_TIMING.replicaSilenceMs || (epoch !== null && epoch !== this.fleet.epoch)) && now - this.lastPullAt >= FEED_TIMING.streamMs) {
      // Another epoch may be the primary's new one (a restart it has not streamed yet) or an old one: ask, and answer now.
      this.ctx.waitUntil(this.pull().catch((err: unknown) => log("replica.pull", err, { replica: this.name })));
    }
    return encodeForFeed(this.fleet.since(epoch, version));
  }

  /**
   * A frame from the primary's stream: a delta from `base`, or a full copy (base null).
   * Returns what this replica now holds, or null when the delta does not join onto it (an
   * empty or restarted replica, or a gap): the primary then sends a full copy.
   */
  applyFrame(base: number | null, bytes: Uint8Array): ReplicaPosition | null {
    const taken = this.take(decodeFleetAnswer(bytes), base);
    if (taken) this.heardAt = Date.now();
    return taken ? this.position() : null;
  }

  /** What this replica holds (for tests and /metrics-style introspection). */
  position(): ReplicaPosition {
    return { epoch: this.fleet.epoch, version: this.fleet.version, ...this.fleet.documentVersions };
  }

  /** Asks the primary for what changed since this copy (a full copy when empty); one pull at a time. */
  private pull(): Promise<void> {
    this.pulling ??= (async () => {
      this.lastPullAt = Date.now();
      const base = this.loaded ? this.fleet.version : 0;
      const bytes = await directory(this.env).replicaPull(this.name, this.loaded ? this.fleet.epoch : null, base);
      const answer = decodeFleetAnswer(bytes);
      if (!this.take(answer, answer.kind === "full" ? null : base)) throw new Error(`the primary's answer does not join onto v${this.fleet.version}`);
      this.heardAt = Date.now();
    })().finally(() => {
      this.pulling = null;
    });
    return this.pulling;
  }

  /** Applies an answer if it joins onto this copy; never steps back within an epoch. */
  private take(answer: FleetAnswer, base: number | null): boolean {
    if (answer.kind === "full") {
      const older = this.loaded && answer.epoch === this.fleet.epoch && answer.version < this.fleet.version;
      if (!older) this.fleet.applyAnswer(answer);
      this.loaded = true;
      return true;
    }
    if (!this.loaded || answer.epoch !== this.fleet.epoch || base === null || base > this.fleet.version) return false;
    // Records are whole, so a delta from an earlier base re-applies to the same result; an
    // equal version may still bring newer policy or carrier versions.
    if (answer.version >= this.fleet.version) this.fleet.applyAnswer(answer);
    return true;
  }
}
