import type { NodeUpdate } from "@meridian/protocol";
import { directory } from "../durable";

/** Coalescing window for pushes to the Directory: bursts of joins travel as one call. */
const PUSH_DELAY_MS = 25;
const PUSH_RETRY_MS = 1000;
/**
 * Heartbeat counts go to the Directory at most this often. They feed only a /metrics counter,
 * and every report is a call into the one primary Directory from every hub: once a second per
 * hub was most of the Directory's calls and of the hubs' idle work.
 */
const HEARTBEAT_REPORT_MS = 10_000;

/**
 * A hub's outbox to the Directory: whole-record updates, latest per node, sent in batches
 * with the hub's name (so the Directory knows which cells to ask after a restart); a failed
 * batch is retried unless a newer update of the same node came in meanwhile.
 */
export class DirectoryPush {
  private readonly pending = new Map<string, NodeUpdate>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Heartbeats since the last report to the Directory (for /metrics). */
  private heartbeatsUnreported = 0;
  private heartbeatsReportedAt = 0;

  constructor(
    private readonly env: Env,
    private readonly hub: string,
  ) {}

  queue(update: NodeUpdate): void {
    this.pending.set(update.id, update);
    this.schedule(PUSH_DELAY_MS);
  }

  countHeartbeat(): void {
    this.heartbeatsUnreported++;
  }

  private schedule(delayMs: number): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, delayMs);
  }

  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending.clear();
    try {
      await directory(this.env).applyUpdates(batch, this.hub);
    } catch (err) {
      console.error(JSON.stringify({ at: "hub.push", updates: batch.length, error: String(err) }));
      for (const update of batch) {
        const newer = this.pending.get(update.id);
        if (newer === undefined || newer.seq < update.seq) this.pending.set(update.id, update);
      }
      this.schedule(PUSH_RETRY_MS);
    }
  }

  /** Heartbeat counts, piggybacked on the liveness sweep, at most every HEARTBEAT_REPORT_MS. */
  async reportHeartbeats(region: string, now: number): Promise<void> {
    if (this.heartbeatsUnreported === 0 || now - this.heartbeatsReportedAt < HEARTBEAT_REPORT_MS) return;
    const count = this.heartbeatsUnreported;
    this.heartbeatsUnreported = 0;
    this.heartbeatsReportedAt = now;
    try {
      await directory(this.env).addHeartbeats(region, count);
    } catch (err) {
      this.heartbeatsUnreported += count;
      console.error(JSON.stringify({ at: "hub.heartbeats", region, error: String(err) }));
    }
  }
}
