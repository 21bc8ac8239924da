import type { NodeRecord } from "@meridian/protocol";
import { FleetIndex } from "@meridian/routing";
import type { DirectoryAnswer } from "./directory";
import type { Env } from "./env";

/** Older than this, a snapshot is refreshed in the background while it keeps serving. */
export const SNAPSHOT_REFRESH_MS = 150;
/** Older than this (an isolate that sat idle), a snapshot is not trusted: the request waits for a fresh one. */
export const SNAPSHOT_MAX_AGE_MS = 2000;

/**
 * The fleet as this isolate sees it: a versioned copy of the Directory, refreshed by deltas
 * in the background (stale-while-revalidate). Only a cold isolate waits for the Directory.
 */
export class FleetCache {
  private epoch: string | null = null;
  private version = 0;
  private readonly nodes = new Map<string, NodeRecord>();
  private index: FleetIndex | null = null;
  private fetchedAt = 0;
  private refreshing = false;

  /** The routing index; waits only when nothing is cached yet. */
  async get(env: Env, waitUntil: (p: Promise<unknown>) => void, now = Date.now()): Promise<FleetIndex> {
    if (this.index === null) {
      await this.refresh(env);
    } else if (now - this.fetchedAt > SNAPSHOT_MAX_AGE_MS) {
      // Better an old fleet than none if the Directory is briefly unreachable; the proxy's retry covers dead nodes.
      await this.refresh(env).catch((err: unknown) => console.error(JSON.stringify({ at: "fleet.refresh", stale: true, error: String(err) })));
    } else if (now - this.fetchedAt > SNAPSHOT_REFRESH_MS && !this.refreshing) {
      waitUntil(this.refresh(env).catch((err: unknown) => console.error(JSON.stringify({ at: "fleet.refresh", error: String(err) }))));
    }
    return this.index ?? new FleetIndex([]);
  }

  get snapshotVersion(): number {
    return this.version;
  }

  async refresh(env: Env): Promise<void> {
    this.refreshing = true;
    try {
      const answer: DirectoryAnswer = await env.DIRECTORY.get(env.DIRECTORY.idFromName("global")).snapshotSince(this.epoch, this.version);
      this.apply(answer);
      this.fetchedAt = Date.now();
    } finally {
      this.refreshing = false;
    }
  }

  private apply(answer: DirectoryAnswer): void {
    if (answer.kind === "full") {
      this.nodes.clear();
      for (const node of answer.nodes) this.nodes.set(node.id, node);
    } else {
      if (answer.updates.length === 0 && this.index !== null) {
        this.version = answer.version;
        return;
      }
      for (const update of answer.updates) {
        if ("gone" in update) this.nodes.delete(update.id);
        else this.nodes.set(update.id, update);
      }
    }
    this.epoch = answer.epoch;
    this.version = answer.version;
    this.index = new FleetIndex([...this.nodes.values()]);
  }
}
