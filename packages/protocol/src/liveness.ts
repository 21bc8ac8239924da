import type { NodeHealth } from "./api";
import { MISSED_HEARTBEATS_DOWN } from "./node-messages";

/** Silent this many intervals: suspect (still routable, but last choice). */
export const MISSED_HEARTBEATS_SUSPECT = 1.5;
/** Fresh-frame checks, one interval apart, a down node needs before it is routable again. */
export const RECOVERY_GOOD_CHECKS = 2;
/** Downs within this window make recovery slower: one more good check per extra down. */
export const FLAP_WINDOW_MS = 5 * 60_000;
export const MAX_RECOVERY_GOOD_CHECKS = 10;

export interface Liveness {
  health: NodeHealth;
  reason: string;
  /** Consecutive fresh checks while down. */
  goodChecks: number;
  /** When the node went down recently (flap damping). */
  recentDowns: number[];
}

export interface LivenessStep extends Liveness {
  changed: boolean;
  /** When this node next needs looking at. */
  nextCheckAt: number;
}

/**
 * One liveness check of one node. Pure: the hub calls it from its sweep with the time since
 * the node's last frame (pings included). Suspicion before down, and proof of life before up,
 * trade a little speed for far fewer false alarms and flaps.
 */
export function stepLiveness(current: Liveness, silentMs: number, heartbeatMs: number, now: number): LivenessStep {
  const downAfter = heartbeatMs * MISSED_HEARTBEATS_DOWN;
  const suspectAfter = heartbeatMs * MISSED_HEARTBEATS_SUSPECT;
  const lastSeen = now - silentMs;
  const recentDowns = current.recentDowns.filter((t) => now - t < FLAP_WINDOW_MS);
  const same = (nextCheckAt: number): LivenessStep => ({ ...current, recentDowns, changed: false, nextCheckAt });
  const to = (health: NodeHealth, reason: string, nextCheckAt: number, extra: Partial<Liveness> = {}): LivenessStep => ({
    health,
    reason,
    goodChecks: 0,
    recentDowns,
    ...extra,
    changed: true,
    nextCheckAt,
  });

  switch (current.health) {
    case "draining":
      return same(lastSeen + downAfter + 1);
    case "healthy":
    case "suspect":
      if (silentMs > downAfter) {
        return to("down", `heartbeat timeout: silent for ${silentMs} ms`, now + heartbeatMs, { recentDowns: [...recentDowns, now] });
      }
      if (silentMs > suspectAfter) {
        return current.health === "suspect" ? same(lastSeen + downAfter + 1) : to("suspect", `silent for ${silentMs} ms`, lastSeen + downAfter + 1);
      }
      if (current.health === "suspect") return to("healthy", "heartbeat resumed", lastSeen + suspectAfter + 1);
      return same(lastSeen + suspectAfter + 1);
    case "down": {
      const needed = Math.min(MAX_RECOVERY_GOOD_CHECKS, RECOVERY_GOOD_CHECKS + Math.max(0, recentDowns.length - 1));
      if (silentMs >= heartbeatMs) return { ...same(now + heartbeatMs), goodChecks: 0, changed: current.goodChecks !== 0 };
      const goodChecks = current.goodChecks + 1;
      if (goodChecks >= needed) return to("healthy", `heartbeat resumed (${goodChecks} good checks)`, lastSeen + suspectAfter + 1);
      return { ...current, recentDowns, goodChecks, reason: `recovering: ${goodChecks}/${needed} good checks`, changed: true, nextCheckAt: now + heartbeatMs };
    }
  }
}
