import { SLOT_COUNT, gpuClassCode, slotOfCode, type NodeKind, type NodeRecord, type NodeUpdate } from "@meridian/protocol";
import { REGIONS, regionIndex } from "@meridian/regions";
import { hash32 } from "./affinity";

export { SLOT_COUNT, gpuClassCode, slotContext, slotOf } from "@meridian/protocol";

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

/** The unit vector of a point on the sphere: distance is then a dot product and one acos. */
export function unitVector(latDeg: number, lonDeg: number): [number, number, number] {
  const lat = (latDeg * Math.PI) / 180;
  const lon = (lonDeg * Math.PI) / 180;
  return [Math.cos(lat) * Math.cos(lon), Math.cos(lat) * Math.sin(lon), Math.sin(lat)];
}

/** Unit vectors of every catalog region. */
const REGION_COUNT = REGIONS.length;
export const REGION_X = new Float64Array(REGION_COUNT);
export const REGION_Y = new Float64Array(REGION_COUNT);
export const REGION_Z = new Float64Array(REGION_COUNT);
REGIONS.forEach((r, i) => {
  [REGION_X[i], REGION_Y[i], REGION_Z[i]] = unitVector(r.lat, r.lon);
});

/** Room made for growth when columns or a region's list fill up (and left at build time). */
const MIN_CAPACITY = 64;
const grown = (n: number) => Math.max(MIN_CAPACITY, n + (n >> 1));
/** regionOf value of a free position. */
const FREE = -2;
const UNKNOWN_REGION = -1;

function grow<T extends Uint8Array | Uint16Array | Int16Array | Int32Array | Uint32Array | Float32Array | Float64Array>(column: T, size: number, make: (n: number) => T): T {
  const next = make(size);
  next.set(column);
  return next;
}

/**
 * A fleet snapshot laid out for routing: nodes grouped by region, the hot fields in typed
 * columns, read by every decision without allocating. Built whole from a full snapshot, then
 * kept current in place by `apply` (a delta of whole records): a changed node rewrites its
 * column entries, a new one takes a free position, a removed one frees its position and
 * leaves its region's list by a swap with the list's last member. Routing results do not
 * depend on the order of nodes within a region (ties break by id), so an index updated in
 * place answers exactly as one rebuilt from the same records.
 *
 * Positions are stable while a node stays; `records[i]` is undefined at a free position.
 * Columns are replaced (grown) by `apply`: read them through the index, do not keep them.
 */
export class FleetIndex {
  private readonly slots: (NodeRecord | undefined)[];
  /** Node positions of each region, by region index (views over the per-region lists). */
  readonly regionNodes: Int32Array[];
  kind: Uint8Array;
  gpuClass: Uint8Array;
  vramGb: Uint16Array;
  /** 1 when routable: healthy, or suspect (as a last choice). */
  healthy: Uint8Array;
  /** Score penalty in ms: suspect nodes (traffic leaves them before they go down) and geo-flagged ones. */
  penaltyMs: Float32Array;
  /** When each node came back from down (0: not in slow start); the penalty depends on the decision's time. */
  returnedAt: Float64Array;
  free: Int32Array;
  load: Float32Array;
  /** Policy slot of each node (see slotOf). */
  slot: Uint8Array;
  /** Enrolled price per GPU-hour (NaN: unpriced). */
  price: Float32Array;
  /** Requests waiting for a generation slot, and recent tokens per second (0: not reported). */
  queue: Int32Array;
  tokensPerSecond: Float32Array;
  /** hash32 of each node's id, for rendezvous affinity. */
  idHash: Uint32Array;
  /** Bit b set when the node advertises the model of bit b (see modelBit); 32 models get bits. */
  modelMask: Uint32Array;
  /**
   * A lower bound of the price in each region (unpriced counts 0): cost steering skips a region
   * whose cheapest node could not place. Lowered on every write, never raised: stale is still a bound.
   */
  readonly regionMinPrice: Float32Array;
  /** Bit s set when region r has a node in slot s: lets a fully refused region be skipped whole. */
  readonly regionSlots: Uint32Array;
  /** Positions of records whose region is not in the catalog; never routed to, reported by explain. */
  readonly unknownRegion: number[];

  /** Region index of each position (UNKNOWN_REGION, or FREE for a free position). */
  private regionOf: Int16Array;
  /** Where each position sits in its region's list. */
  private regionPosition: Int32Array;
  private readonly regionLists: Int32Array[];
  private readonly regionCounts: Int32Array;
  /** Nodes per (region, slot), so a slot's bit in regionSlots clears when its last node leaves. */
  private readonly slotCounts: Int32Array;
  private readonly freePositions: number[] = [];
  /** Nodes advertising each model (any health): an unknown model is refused before routing. */
  private readonly modelNodes = new Map<string, number>();
  /** Bit of each model in modelMask, given on first sight and kept (so masks never go stale). */
  private readonly modelBits = new Map<string, number>();
  /** Built on the first apply: a full-snapshot build does not pay for it. */
  private positions: Map<string, number> | null = null;
  private live: number;

  constructor(records: readonly NodeRecord[]) {
    const n = records.length;
    const capacity = grown(n);
    this.slots = records.slice();
    this.live = n;
    this.kind = new Uint8Array(capacity);
    this.gpuClass = new Uint8Array(capacity);
    this.vramGb = new Uint16Array(capacity);
    this.healthy = new Uint8Array(capacity);
    this.penaltyMs = new Float32Array(capacity);
    this.returnedAt = new Float64Array(capacity);
    this.free = new Int32Array(capacity);
    this.load = new Float32Array(capacity);
    this.slot = new Uint8Array(capacity);
    this.price = new Float32Array(capacity);
    this.queue = new Int32Array(capacity);
    this.tokensPerSecond = new Float32Array(capacity);
    this.idHash = new Uint32Array(capacity);
    this.modelMask = new Uint32Array(capacity);
    this.regionMinPrice = new Float32Array(REGION_COUNT).fill(Number.POSITIVE_INFINITY);
    this.regionOf = new Int16Array(capacity).fill(FREE);
    this.regionPosition = new Int32Array(capacity);
    this.regionSlots = new Uint32Array(REGION_COUNT);
    this.regionCounts = new Int32Array(REGION_COUNT);
    this.slotCounts = new Int32Array(REGION_COUNT * SLOT_COUNT);
    this.unknownRegion = [];
    for (let i = 0; i < n; i++) {
      const record = records[i];
      if (record === undefined) continue;
      const region = regionIndex(record.region);
      this.write(i, record, region);
      this.regionOf[i] = region;
      if (region >= 0) this.regionCounts[region] = (this.regionCounts[region] ?? 0) + 1;
    }
    this.regionLists = Array.from({ length: REGION_COUNT }, (_, r) => new Int32Array(grown(this.regionCounts[r] ?? 0)));
    this.regionCounts.fill(0);
    for (let i = 0; i < n; i++) {
      if (this.regionOf[i] !== FREE) this.attach(i, this.regionOf[i] ?? UNKNOWN_REGION, this.slot[i] ?? 0);
    }
    this.regionNodes = this.regionLists.map((list, r) => list.subarray(0, this.regionCounts[r] ?? 0));
  }

  /** The record at each position (undefined where free). Iterate it for O(fleet) work only. */
  get records(): readonly (NodeRecord | undefined)[] {
    return this.slots;
  }

  /** Nodes in the index. */
  get size(): number {
    return this.live;
  }

  /** Every node in the index, in position order. */
  nodes(): NodeRecord[] {
    const out: NodeRecord[] = [];
    for (const record of this.slots) if (record !== undefined) out.push(record);
    return out;
  }

  /** The model's bit in modelMask, or -1 when it has none (unknown, or past the 32 with bits). */
  modelBit(model: string): number {
    return this.modelBits.get(model) ?? -1;
  }

  /** How many nodes advertise `model` (healthy or not). */
  modelCount(model: string): number {
    // Settles duplicate ids of a build first, so each node counts once.
    this.idPositions();
    return this.modelNodes.get(model) ?? 0;
  }

  get(id: string): NodeRecord | undefined {
    const at = this.idPositions().get(id);
    return at === undefined ? undefined : this.slots[at];
  }

  /**
   * Applies a delta in place, in order: a record replaces the node of its id (or adds it), a
   * `gone` update removes it. Updates are taken as they come (the Directory has already
   * ordered them by seq), as a rebuild from the resulting records would.
   */
  apply(updates: readonly NodeUpdate[]): void {
    const positions = this.idPositions();
    const touched: number[] = [];
    for (const update of updates) {
      const at = positions.get(update.id);
      if ("gone" in update) {
        if (at === undefined) continue;
        this.remove(at, touched);
        positions.delete(update.id);
        continue;
      }
      if (at === undefined) {
        const fresh = this.freePositions.pop() ?? this.appendPosition();
        this.slots[fresh] = update;
        const region = regionIndex(update.region);
        this.write(fresh, update, region);
        this.attach(fresh, region, this.slot[fresh] ?? 0);
        if (region >= 0) touched.push(region);
        positions.set(update.id, fresh);
        this.live++;
        continue;
      }
      const previous = this.slots[at];
      const oldRegion = this.regionOf[at] ?? UNKNOWN_REGION;
      const oldSlot = this.slot[at] ?? 0;
      const region = previous?.region === update.region ? oldRegion : regionIndex(update.region);
      this.slots[at] = update;
      // Most changes are health and load: the id's hash and the models' counts and mask stay.
      if (previous !== undefined && sameModels(previous.models, update.models)) this.writeState(at, update, region);
      else {
        this.countModels(previous, -1);
        this.write(at, update, region);
      }
      if (region !== oldRegion || this.slot[at] !== oldSlot) {
        this.detach(at, oldRegion, oldSlot);
        this.attach(at, region, this.slot[at] ?? 0);
        if (oldRegion >= 0) touched.push(oldRegion);
        if (region >= 0) touched.push(region);
      }
    }
    for (const r of touched) this.regionNodes[r] = (this.regionLists[r] ?? new Int32Array(0)).subarray(0, this.regionCounts[r] ?? 0);
  }

  private idPositions(): Map<string, number> {
    if (this.positions !== null) return this.positions;
    const positions = new Map<string, number>();
    const duplicates: number[] = [];
    this.slots.forEach((record, i) => {
      if (record === undefined) return;
      const before = positions.get(record.id);
      // Two records of one id in a build: the later one wins, as in a Map of the snapshot.
      if (before !== undefined) duplicates.push(before);
      positions.set(record.id, i);
    });
    this.positions = positions;
    const touched: number[] = [];
    for (const at of duplicates) this.remove(at, touched);
    for (const r of touched) this.regionNodes[r] = (this.regionLists[r] ?? new Int32Array(0)).subarray(0, this.regionCounts[r] ?? 0);
    return positions;
  }

  private countModels(record: NodeRecord | undefined, delta: 1 | -1): void {
    const models = record?.models;
    if (models === undefined) return;
    for (const model of models) {
      const n = (this.modelNodes.get(model) ?? 0) + delta;
      if (n <= 0) this.modelNodes.delete(model);
      else this.modelNodes.set(model, n);
    }
  }

  /** The hot columns of one node, as routing reads them (and its models counted in). */
  private write(i: number, r: NodeRecord, region: number): void {
    this.countModels(r, 1);
    this.idHash[i] = hash32(r.id);
    let mask = 0;
    for (const model of r.models ?? []) {
      let bit = this.modelBits.get(model);
      if (bit === undefined && this.modelBits.size < 32) {
        bit = this.modelBits.size;
        this.modelBits.set(model, bit);
      }
      if (bit !== undefined) mask |= 1 << bit;
    }
    this.modelMask[i] = mask >>> 0;
    this.writeState(i, r, region);
  }

  /** The columns that change with a node's state (all but its id hash and models). */
  private writeState(i: number, r: NodeRecord, region: number): void {
    this.price[i] = r.pricePerGpuHour ?? Number.NaN;
    this.queue[i] = r.queue ?? 0;
    this.tokensPerSecond[i] = r.tokensPerSecond ?? 0;
    if (region >= 0) this.regionMinPrice[region] = Math.min(this.regionMinPrice[region] ?? 0, r.pricePerGpuHour ?? 0);
    const gpu = r.gpu;
    const health = r.health;
    const gpuClass = gpu === undefined ? undefined : gpu.class;
    this.kind[i] = KIND_CODE[r.kind];
    const classCode = gpuClassCode(gpuClass);
    this.gpuClass[i] = classCode;
    this.vramGb[i] = gpu === undefined ? 0 : gpu.vramGb;
    this.healthy[i] = health === "healthy" || health === "suspect" ? 1 : 0;
    this.penaltyMs[i] = (health === "suspect" ? SUSPECT_PENALTY_MS : 0) + (r.geoFlag !== undefined ? GEO_FLAG_PENALTY_MS : 0);
    const returnedAt = r.returnedAt;
    this.returnedAt[i] = health === "healthy" && returnedAt !== undefined ? returnedAt : 0;
    this.free[i] = r.free;
    this.load[i] = r.load;
    this.slot[i] = slotOfCode(r.kind, gpuClass, classCode);
  }

  private remove(at: number, touched: number[]): void {
    const region = this.regionOf[at] ?? UNKNOWN_REGION;
    this.detach(at, region, this.slot[at] ?? 0);
    if (region >= 0) touched.push(region);
    this.countModels(this.slots[at], -1);
    this.slots[at] = undefined;
    this.regionOf[at] = FREE;
    this.healthy[at] = 0;
    this.freePositions.push(at);
    this.live--;
  }

  private appendPosition(): number {
    const at = this.slots.length;
    this.slots.push(undefined);
    if (at >= this.kind.length) {
      const size = grown(at + 1);
      this.kind = grow(this.kind, size, (k) => new Uint8Array(k));
      this.gpuClass = grow(this.gpuClass, size, (k) => new Uint8Array(k));
      this.vramGb = grow(this.vramGb, size, (k) => new Uint16Array(k));
      this.healthy = grow(this.healthy, size, (k) => new Uint8Array(k));
      this.penaltyMs = grow(this.penaltyMs, size, (k) => new Float32Array(k));
      this.returnedAt = grow(this.returnedAt, size, (k) => new Float64Array(k));
      this.free = grow(this.free, size, (k) => new Int32Array(k));
      this.load = grow(this.load, size, (k) => new Float32Array(k));
      this.slot = grow(this.slot, size, (k) => new Uint8Array(k));
      this.price = grow(this.price, size, (k) => new Float32Array(k));
      this.queue = grow(this.queue, size, (k) => new Int32Array(k));
      this.tokensPerSecond = grow(this.tokensPerSecond, size, (k) => new Float32Array(k));
      this.idHash = grow(this.idHash, size, (k) => new Uint32Array(k));
      this.modelMask = grow(this.modelMask, size, (k) => new Uint32Array(k));
      this.regionOf = grow(this.regionOf, size, (k) => new Int16Array(k).fill(FREE));
      this.regionPosition = grow(this.regionPosition, size, (k) => new Int32Array(k));
    }
    return at;
  }

  private attach(at: number, region: number, slot: number): void {
    this.regionOf[at] = region;
    if (region < 0) {
      this.unknownRegion.push(at);
      return;
    }
    const count = this.regionCounts[region] ?? 0;
    let list = this.regionLists[region] ?? new Int32Array(0);
    if (count >= list.length) {
      list = grow(list, grown(count + 1), (k) => new Int32Array(k));
      this.regionLists[region] = list;
    }
    list[count] = at;
    this.regionPosition[at] = count;
    this.regionCounts[region] = count + 1;
    const cell = region * SLOT_COUNT + slot;
    this.slotCounts[cell] = (this.slotCounts[cell] ?? 0) + 1;
    this.regionSlots[region] = (this.regionSlots[region] ?? 0) | (1 << slot);
  }

  private detach(at: number, region: number, slot: number): void {
    if (region < 0) {
      const k = this.unknownRegion.indexOf(at);
      if (k >= 0) this.unknownRegion.splice(k, 1);
      return;
    }
    const list = this.regionLists[region];
    if (list === undefined) return;
    const last = (this.regionCounts[region] ?? 1) - 1;
    const hole = this.regionPosition[at] ?? 0;
    const moved = list[last] ?? at;
    list[hole] = moved;
    this.regionPosition[moved] = hole;
    this.regionCounts[region] = last;
    const cell = region * SLOT_COUNT + slot;
    const left = (this.slotCounts[cell] ?? 1) - 1;
    this.slotCounts[cell] = left;
    if (left === 0) this.regionSlots[region] = (this.regionSlots[region] ?? 0) & ~(1 << slot);
  }
}

/** Whether two model lists are the same, in order (a reordered list just takes the full write). */
function sameModels(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}
