import type { GpuHardware, NodeKind } from "./common";
import type { NodeHealth } from "./api";

/**
 * One node as the fleet snapshot carries it. Hubs send whole records (never field diffs),
 * so applying one twice or late is harmless: `seq` orders records of the same node.
 */
export interface NodeRecord {
  id: string;
  kind: NodeKind;
  region: string;
  /**
   * The credential the node connected with: its request-signing key derives from it. Hubs
   * always set it; a record without one cannot be signed for and is never proxied to.
   */
  credentialId?: string;
  gpu?: GpuHardware;
  capacity: number;
  endpoint: string;
  health: NodeHealth;
  /** Why the node is in this health state ("heartbeat timeout", "drain: upgrade"...). */
  healthReason: string;
  /** When the health state last changed, ms since the epoch. */
  healthSince: number;
  /**
   * When the node last came back from down, ms since the epoch: routing ramps it in over
   * SLOW_START_MS (packages/routing) rather than sending it its whole share at once.
   */
  returnedAt?: number;
  load: number;
  inFlight: number;
  free: number;
  connectedAt: number;
  /** Carrier nodes: partner id and last reported congestion (0..1). */
  partner?: string;
  congestion?: number;
  /** Hotspots: enrolled backhaul (Mbit/s), reported tier (already capped to it) and users. */
  maxMbps?: number;
  tier?: number;
  users?: number;
  /**
   * Set when the node's socket arrived at a Cloudflare colo far from its enrolled region:
   * the node is ranked last and its usage is flagged for settlement review.
   */
  geoFlag?: { colo: string; km: number };
  /** GPU nodes: the models served (from hello or heartbeat, bounded by the enrollment). */
  models?: string[];
  /** GPU nodes: enrolled price of one GPU-hour, USD (from the signed credential). */
  pricePerGpuHour?: number;
  /** GPU nodes: requests waiting for a generation slot, and recent tokens per second. */
  queue?: number;
  tokensPerSecond?: number;
  /** Per-node sequence assigned by its hub; higher wins. */
  seq: number;
}

/** A record with health "gone" removes the node from the snapshot. */
export type NodeUpdate = NodeRecord | { id: string; region: string; gone: true; seq: number };

export interface FleetSnapshot {
  version: number;
  nodes: NodeRecord[];
}

/** Answer of the Directory to "what changed since version v". */
export type SnapshotAnswer =
  | { kind: "full"; version: number; nodes: NodeRecord[] }
  | { kind: "delta"; version: number; updates: NodeUpdate[] };
