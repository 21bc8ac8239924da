import { GPU_CLASSES, type GpuClass, type NodeKind, type NodeRecord } from "@meridian/protocol";
import { REGIONS, regionIndex } from "@meridian/regions";

const GPU_CLASS_INDEX = new Map<GpuClass, number>(GPU_CLASSES.map((c, i) => [c, i + 1]));
/** 0 stands for "no GPU" in the dense class column. */
export function gpuClassCode(gpuClass: GpuClass | undefined): number {
  return gpuClass === undefined ? 0 : (GPU_CLASS_INDEX.get(gpuClass) ?? 0);
}

/** What suspicion costs in ranking: more than a region hop nearby, so others go first. */
export const SUSPECT_PENALTY_MS = 50;
/** A node connecting from far outside its enrolled region ranks behind every honest one nearby. */
export const GEO_FLAG_PENALTY_MS = 500;

/**
 * Slow start: a node back from down starts with the suspect penalty, which falls linearly to
 * zero over this window. It wins first the clients for which it is clearly the best choice
 * and more as the penalty fades, instead of its whole share (and a herd of retries) at once.
 */
export const SLOW_START_MS = 30_000;
export const SLOW_START_PENALTY_MS = SUSPECT_PENALTY_MS;

/** The ranking penalty of a node that came back at `returnedAt` (0 outside the window). */
export function slowStartPenaltyMs(returnedAt: number | undefined, now: number): number {
  if (returnedAt === undefined) return 0;
  const elapsed = now - returnedAt;
  if (elapsed >= SLOW_START_MS) return 0;
  // A clock behind the hub's (elapsed < 0) counts as just returned.
  return SLOW_START_PENALTY_MS * (1 - Math.max(0, elapsed) / SLOW_START_MS);
}

export const KIND_CODE: Record<NodeKind, number> = { gpu: 1, hotspot: 2, carrier: 3 };

/**
 * What the policy can tell apart within a region: 0 for a hotspot, 1 for a carrier backbone
 * node, 2..n+1 for GPU classes (n + 2 for a GPU of no known class). Nodes of one region and
 * slot share every verdict.
 */
export const SLOT_COUNT = GPU_CLASSES.length + 3;
export function slotOf(kind: NodeKind, gpuClass: GpuClass | undefined): number {
  if (kind === "hotspot") return 0;
  if (kind === "carrier") return 1;
  return gpuClass === undefined ? SLOT_COUNT - 1 : 1 + gpuClassCode(gpuClass);
}

/** The node kind and class a slot stands for (the inverse of slotOf). */
export function slotContext(slot: number): { kind: NodeKind; gpuClass?: GpuClass } {
  if (slot === 0) return { kind: "hotspot" };
  if (slot === 1) return { kind: "carrier" };
  const gpuClass = GPU_CLASSES[slot - 2];
  return gpuClass === undefined ? { kind: "gpu" } : { kind: "gpu", gpuClass };
}

/** Unit vectors of every catalog region, so distance is a dot product and one acos. */
const REGION_COUNT = REGIONS.length;
export const REGION_X = new Float64Array(REGION_COUNT);
export const REGION_Y = new Float64Array(REGION_COUNT);
export const REGION_Z = new Float64Array(REGION_COUNT);
REGIONS.forEach((r, i) => {
  const lat = (r.lat * Math.PI) / 180;
  const lon = (r.lon * Math.PI) / 180;
  REGION_X[i] = Math.cos(lat) * Math.cos(lon);
  REGION_Y[i] = Math.cos(lat) * Math.sin(lon);
  REGION_Z[i] = Math.sin(lat);
});

/**
 * A fleet snapshot laid out for routing: nodes grouped by region, the hot fields in typed
 * columns. Built once per snapshot version, then read by every decision without allocating.
 */
export class FleetIndex {
  readonly records: readonly NodeRecord[];
  /** Node positions (into `records`) of each region, by region index. */
  readonly regionNodes: readonly Int32Array[];
  readonly kind: Uint8Array;
  readonly gpuClass: Uint8Array;
  readonly vramGb: Uint16Array;
  /** 1 when routable: healthy, or suspect (as a last choice). */
  readonly healthy: Uint8Array;
  /** Score penalty in ms: suspect nodes (traffic leaves them before they go down) and geo-flagged ones. */
  readonly penaltyMs: Float32Array;
  /** When each node came back from down (0: not in slow start); the penalty depends on the decision's time. */
  readonly returnedAt: Float64Array;
  readonly free: Int32Array;
  readonly load: Float32Array;
  /** Policy slot of each node (see slotOf). */
  readonly slot: Uint8Array;
  /** Bit s set when region r has a node in slot s: lets a fully refused region be skipped whole. */
  readonly regionSlots: Uint32Array;
  /** Records whose region is not in the catalog; never routed to, reported by explain. */
  readonly unknownRegion: readonly number[];

  constructor(records: readonly NodeRecord[]) {
    const n = records.length;
    this.records = records;
    this.kind = new Uint8Array(n);
    this.gpuClass = new Uint8Array(n);
    this.vramGb = new Uint16Array(n);
    this.healthy = new Uint8Array(n);
    this.penaltyMs = new Float32Array(n);
    this.returnedAt = new Float64Array(n);
    this.free = new Int32Array(n);
    this.load = new Float32Array(n);
    this.slot = new Uint8Array(n);
    this.regionSlots = new Uint32Array(REGION_COUNT);
    const buckets: number[][] = Array.from({ length: REGION_COUNT }, () => []);
    const unknown: number[] = [];
    records.forEach((r, i) => {
      this.kind[i] = KIND_CODE[r.kind];
      this.gpuClass[i] = gpuClassCode(r.gpu?.class);
      this.vramGb[i] = r.gpu?.vramGb ?? 0;
      this.healthy[i] = r.health === "healthy" || r.health === "suspect" ? 1 : 0;
      this.penaltyMs[i] = (r.health === "suspect" ? SUSPECT_PENALTY_MS : 0) + (r.geoFlag !== undefined ? GEO_FLAG_PENALTY_MS : 0);
      this.returnedAt[i] = r.health === "healthy" && r.returnedAt !== undefined ? r.returnedAt : 0;
      this.free[i] = r.free;
      this.load[i] = r.load;
      const slot = slotOf(r.kind, r.gpu?.class);
      this.slot[i] = slot;
      const region = regionIndex(r.region);
      if (region < 0) unknown.push(i);
      else {
        buckets[region]?.push(i);
        this.regionSlots[region] = (this.regionSlots[region] ?? 0) | (1 << slot);
      }
    });
    this.regionNodes = buckets.map((b) => Int32Array.from(b));
    this.unknownRegion = unknown;
  }

  get size(): number {
    return this.records.length;
  }
}
