import type { NodeRecord, Requirements, Steering } from "@meridian/protocol";
import { EARTH_RADIUS_KM, REGIONS, estimateRttMs } from "@meridian/regions";
import { hash32, rendezvousWeight } from "./affinity";
import { FleetIndex, KIND_CODE, REGION_X, REGION_Y, REGION_Z, SLOT_COUNT, SLOW_START_MS, SLOW_START_PENALTY_MS, gpuClassCode, unitVector } from "./fleet-index";

/** Milliseconds of estimated RTT that a fully loaded node is worth: load breaks near-ties. */
export const LOAD_PENALTY_MS = 25;
export const DEFAULT_FALLBACKS = 2;

/**
 * GPU-aware load: a queued request waits roughly until this many tokens have been generated
 * ahead of it, at the node's reported tokens per second. Without a token rate, each queued
 * request costs QUEUE_PENALTY_MS_PER_REQUEST. The queue's cost is capped so that a very busy
 * node still ranks (behind its peers) rather than overflowing the score.
 */
export const QUEUED_REQUEST_TOKENS = 200;
export const QUEUE_PENALTY_MS_PER_REQUEST = 100;
export const QUEUE_PENALTY_CAP_MS = 2000;

/**
 * Steering: the price term is price (USD per GPU-hour) times this many ms. Latency ignores
 * price; balanced trades 1 $/h against 20 ms; cost ranks by price first among the nodes within
 * STEER_RTT_BOUND_MS of the nearest eligible one (farther nodes are never chosen for price).
 */
export const PRICE_MS_PER_DOLLAR: Readonly<Record<Steering, number>> = { latency: 0, balanced: 20, cost: 1000 };
export const STEER_RTT_BOUND_MS = 30;
/** An unpriced node ranks as this expensive under cost and balanced steering. */
export const UNPRICED_PER_GPU_HOUR = 10;
/**
 * Session affinity picks among eligible nodes at most this much farther than the nearest,
 * taking whole regions nearest first until the pool holds AFFINITY_POOL_TARGET nodes: enough
 * choice to spread sessions, few enough that a dense metro does not cost a continent's walk.
 */
export const AFFINITY_RTT_BOUND_MS = 10;
export const AFFINITY_POOL_TARGET = 16;
/** Where a decision falls in the slow-start ramp when the caller gives no sample. */
export const DEFAULT_SLOW_START_SAMPLE = 0.5;

export interface ClientPoint {
  lat: number;
  lon: number;
}

/**
 * Extra per-node exclusion, e.g. the compiled policy. Returns null to allow, or the reason
 * (a rule id or a short code) to exclude. Called only for nodes that pass every other check.
 */
export type NodeFilter = (node: NodeRecord) => string | null;

/**
 * The policy as routing needs it: may region `region` (catalog index) serve nodes of `slot`?
 * Asked at most once per (region, slot) per decision, and only for slots present there. The
 * policy keeps its verdicts (packages/policy: a client judge's `allows`); routing keeps none.
 */
export type SlotPolicy = (region: number, slot: number) => boolean;

export interface RouteInput {
  /** null when the client's location is unknown: every region then counts as equally near. */
  client: ClientPoint | null;
  requirements: Requirements;
  fallbacks?: number;
  /** Per-node exclusion (kept for explanations and extra checks). */
  filter?: NodeFilter;
  /** Per-(region, slot) verdicts: makes a mostly refused fleet cheap to walk. */
  allowed?: SlotPolicy;
  /** Regions farther than this from the client are not considered (needs a client location). */
  maxDistanceKm?: number;
  /** Time of the decision, ms since the epoch (slow start depends on it); default Date.now(). */
  now?: number;
  /** What to optimise (default latency). */
  steer?: Steering;
  /** Session affinity key: picks among the nearest eligible nodes by rendezvous hashing. */
  affinityKey?: string;
  /**
   * Where this decision falls in [0, 1) for slow start: a returning node at ramp f (0 just back,
   * 1 settled) is admitted at its place when sample < f, else ranked behind by the full slow-start
   * penalty. Random samples give it a share f of what it would win; default 0.5.
   */
  sample?: number;
}

/** A candidate's score, part by part (all in ms; the score is their sum). */
export interface ScoreParts {
  rttMs: number;
  /** Utilisation, queue depth and token rate. */
  loadMs: number;
  /** Suspect health, geo flag. */
  penaltyMs: number;
  slowStartMs: number;
  /** Price times the steering's weight. */
  priceMs: number;
}

export interface Candidate {
  node: NodeRecord;
  rttMs: number;
  score: number;
  parts?: ScoreParts;
  /** Set on the node session affinity chose. */
  affinity?: boolean;
}

export interface RouteDecision {
  /** Best first: primary then fallbacks. Empty when nothing qualifies. */
  candidates: Candidate[];
  /** Nodes whose eligibility was checked (the rest were pruned as too far to matter). */
  examined: number;
}

export type ExclusionReason =
  | "unhealthy"
  | "draining"
  | "no-free-capacity"
  | "kind-mismatch"
  | "gpu-class-mismatch"
  | "vram-too-small"
  | "unknown-region"
  | "model-not-served"
  | "price-above-max"
  | (string & {});

export interface Exclusion {
  id: string;
  region: string;
  reason: ExclusionReason;
}

const REGION_COUNT = REGIONS.length;
// Scratch space reused by every decision: routing runs on one thread per isolate.
const regionDot = new Float64Array(REGION_COUNT);
const visited = new Uint8Array(REGION_COUNT);

/** The unvisited region nearest the client (largest dot product), or -1. No sort per decision. */
function nextNearest(): number {
  let best = -1;
  let bestDot = Number.NEGATIVE_INFINITY;
  for (let r = 0; r < REGION_COUNT; r++) {
    if (visited[r] === 0 && (regionDot[r] ?? 0) > bestDot) {
      bestDot = regionDot[r] ?? 0;
      best = r;
    }
  }
  return best;
}

/** Why a node cannot serve a request with these requirements, or null if it can. `modelBit`: index.modelBit(req.model). */
export function ineligibility(index: FleetIndex, i: number, req: Requirements, wantKind: number, wantClass: number, modelBit = req.model === undefined ? -1 : index.modelBit(req.model)): ExclusionReason | null {
  const record = index.records[i];
  if (index.healthy[i] !== 1) return record?.health === "draining" ? "draining" : "unhealthy";
  if (wantKind !== 0 && index.kind[i] !== wantKind) return "kind-mismatch";
  if (wantClass !== 0 && index.gpuClass[i] !== wantClass) return "gpu-class-mismatch";
  if (req.minVramGb !== undefined && (index.vramGb[i] ?? 0) < req.minVramGb) return "vram-too-small";
  if (req.model !== undefined) {
    // The mask answers for the first 32 models an index meets; past those, the record's list.
    const serves = modelBit >= 0 ? ((index.modelMask[i] ?? 0) >>> modelBit) & 1 : record?.models?.includes(req.model) === true ? 1 : 0;
    if (serves === 0) return "model-not-served";
  }
  if (req.maxPrice !== undefined && !((index.price[i] ?? Number.NaN) <= req.maxPrice)) return "price-above-max";
  if ((index.free[i] ?? 0) <= 0) return "no-free-capacity";
  return null;
}

/** The load part of a score: utilisation, plus the expected wait of the node's queue. */
export function gpuLoadMs(load: number, queue: number, tokensPerSecond: number): number {
  const base = load * LOAD_PENALTY_MS;
  if (queue <= 0) return base;
  const perRequest = tokensPerSecond > 0 ? (QUEUED_REQUEST_TOKENS / tokensPerSecond) * 1000 : QUEUE_PENALTY_MS_PER_REQUEST;
  return base + Math.min(QUEUE_PENALTY_CAP_MS, queue * perRequest);
}

/** Ramp of a node back from down: 0 just returned, 1 settled (or never away). */
export function slowStartRamp(returnedAt: number, now: number): number {
  if (returnedAt === 0) return 1;
  return Math.min(1, Math.max(0, now - returnedAt) / SLOW_START_MS);
}

// Affinity pool scratch: positions and scores of the eligible nodes within the bound.
let poolAt = new Int32Array(1024);
let poolRtt = new Float64Array(1024);

function wanted(req: Requirements): { wantKind: number; wantClass: number } {
  // Asking for a GPU class or VRAM implies a GPU node.
  const kind = req.kind ?? (req.gpuClass !== undefined || req.minVramGb !== undefined ? "gpu" : undefined);
  return { wantKind: kind === undefined ? 0 : KIND_CODE[kind], wantClass: gpuClassCode(req.gpuClass) };
}

/**
 * Picks the best `1 + fallbacks` nodes: lowest estimated RTT plus a load penalty, ties by id.
 * Regions are walked nearest first and the walk stops once a region's RTT alone cannot beat
 * the worst kept candidate, so a decision touches the nearby part of a large fleet only.
 * With `allowed`, a region whose present node slots are all refused is skipped unread.
 */
export function route(index: FleetIndex, input: RouteInput): RouteDecision {
  const want = 1 + (input.fallbacks ?? DEFAULT_FALLBACKS);
  const { wantKind, wantClass } = wanted(input.requirements);
  const modelBit = input.requirements.model === undefined ? -1 : index.modelBit(input.requirements.model);
  const kept: Candidate[] = [];
  const now = input.now ?? Date.now();
  const sample = input.sample ?? DEFAULT_SLOW_START_SAMPLE;
  const steer = input.steer ?? "latency";
  const priceWeight = PRICE_MS_PER_DOLLAR[steer];
  const affinity = input.affinityKey !== undefined;
  const keyHash = affinity ? hash32(input.affinityKey ?? "") : 0;
  let pooled = 0;
  // RTT of the nearest eligible node (regions come nearest first: the first one kept).
  let nearestRtt = Number.NaN;
  let examined = 0;
  if (input.client === null) regionDot.fill(0);
  else {
    const [cx, cy, cz] = unitVector(input.client.lat, input.client.lon);
    for (let r = 0; r < REGION_COUNT; r++) regionDot[r] = cx * (REGION_X[r] ?? 0) + cy * (REGION_Y[r] ?? 0) + cz * (REGION_Z[r] ?? 0);
  }
  visited.fill(0);
  for (let step = 0; step < REGION_COUNT; step++) {
    const r = nextNearest();
    if (r < 0) break;
    visited[r] = 1;
    const km = input.client === null ? 0 : Math.acos(Math.min(1, Math.max(-1, regionDot[r] ?? 0))) * EARTH_RADIUS_KM;
    // Regions come nearest first, so the first one out of reach ends the walk.
    if (input.maxDistanceKm !== undefined && km > input.maxDistanceKm) break;
    const rtt = input.client === null ? 0 : estimateRttMs(km);
    // Cost steering never trades distance past its bound for price.
    if (steer === "cost" && rtt > nearestRtt + STEER_RTT_BOUND_MS) break;
    const inAffinityReach = affinity && pooled < AFFINITY_POOL_TARGET && !(rtt > nearestRtt + AFFINITY_RTT_BOUND_MS);
    const worst = kept.length === want ? kept[want - 1] : undefined;
    // Every score part is >= 0, so a region whose RTT alone loses cannot place a node.
    if (worst !== undefined && rtt > worst.score && !inAffinityReach) break;
    const members = index.regionNodes[r];
    if (members === undefined || members.length === 0) continue;
    // Priced steering: a region whose cheapest node could not place is skipped (farther ones may be cheaper).
    if (worst !== undefined && priceWeight > 0 && !inAffinityReach && rtt + priceWeight * (index.regionMinPrice[r] ?? 0) > worst.score) continue;
    // Slots of this region the policy allows (bit per slot); all when there is no policy.
    const allowedSlots = input.allowed === undefined ? ALL_SLOTS : allowedSlotsOf(index, r, input.allowed);
    if (allowedSlots === 0) continue;
    for (let m = 0; m < members.length; m++) {
      const i = members[m] ?? 0;
      examined++;
      if (ineligibility(index, i, input.requirements, wantKind, wantClass, modelBit) !== null) continue;
      if (((allowedSlots >>> (index.slot[i] ?? 0)) & 1) === 0) continue;
      // The common cases (settled node, empty queue, latency steering) skip the calls.
      const slowStart = (index.returnedAt[i] ?? 0) === 0 ? 0 : slowStartMs(index, i, now, sample);
      const queue = index.queue[i] ?? 0;
      const loadMs = queue === 0 ? (index.load[i] ?? 0) * LOAD_PENALTY_MS : gpuLoadMs(index.load[i] ?? 0, queue, index.tokensPerSecond[i] ?? 0);
      const penalty = index.penaltyMs[i] ?? 0;
      const priceMs = priceWeight === 0 ? 0 : priceTermMs(index, i, priceWeight);
      const score = rtt + loadMs + penalty + slowStart + priceMs;
      const last = kept.length === want ? kept[want - 1] : undefined;
      const node = index.records[i];
      if (node === undefined) continue;
      const beaten = last !== undefined && (score > last.score || (score === last.score && node.id >= last.node.id));
      if (beaten && !inAffinityReach) continue;
      if (input.filter !== undefined && input.filter(node) !== null) continue;
      if (Number.isNaN(nearestRtt)) nearestRtt = rtt;
      if (inAffinityReach && !(rtt > nearestRtt + AFFINITY_RTT_BOUND_MS)) pooled = pool(pooled, i, rtt);
      if (beaten) continue;
      insertRanked(kept, { node, rttMs: rtt, score, parts: { rttMs: rtt, loadMs, penaltyMs: penalty, slowStartMs: slowStart, priceMs } }, want);
    }
  }
  if (affinity && pooled > 0) {
    const partsOf = (i: number, rtt: number): ScoreParts => ({
      rttMs: rtt,
      loadMs: gpuLoadMs(index.load[i] ?? 0, index.queue[i] ?? 0, index.tokensPerSecond[i] ?? 0),
      penaltyMs: index.penaltyMs[i] ?? 0,
      slowStartMs: slowStartMs(index, i, now, sample),
      priceMs: priceTermMs(index, i, priceWeight),
    });
    return { candidates: withAffinity(index, kept, pooled, keyHash, want, partsOf), examined };
  }
  return { candidates: kept, examined };
}

/** Slow start as a share limit: the full penalty unless the decision's sample falls within the ramp. */
function slowStartMs(index: FleetIndex, i: number, now: number, sample: number): number {
  const ramp = slowStartRamp(index.returnedAt[i] ?? 0, now);
  return ramp < 1 && !(sample < ramp) ? SLOW_START_PENALTY_MS : 0;
}

function priceTermMs(index: FleetIndex, i: number, priceWeight: number): number {
  if (priceWeight === 0) return 0;
  const price = index.price[i] ?? Number.NaN;
  return priceWeight * (Number.isNaN(price) ? UNPRICED_PER_GPU_HOUR : price);
}

function pool(pooled: number, at: number, rtt: number): number {
  if (pooled === poolAt.length) {
    const at2 = new Int32Array(pooled * 2);
    at2.set(poolAt);
    poolAt = at2;
    const rtt2 = new Float64Array(pooled * 2);
    rtt2.set(poolRtt);
    poolRtt = rtt2;
  }
  poolAt[pooled] = at;
  poolRtt[pooled] = rtt;
  return pooled + 1;
}

/** The pooled node of highest rendezvous weight first, then the ranked candidates without it. */
function withAffinity(index: FleetIndex, kept: Candidate[], pooled: number, keyHash: number, want: number, partsOf: (i: number, rtt: number) => ScoreParts): Candidate[] {
  let best = -1;
  let bestWeight = -1;
  let bestId = "";
  for (let p = 0; p < pooled; p++) {
    const at = poolAt[p] ?? 0;
    const w = rendezvousWeight(keyHash, index.idHash[at] ?? 0);
    const id = index.records[at]?.id ?? "";
    if (w > bestWeight || (w === bestWeight && id < bestId)) {
      best = p;
      bestWeight = w;
      bestId = id;
    }
  }
  const at = poolAt[best] ?? 0;
  const node = index.records[at];
  if (node === undefined) return kept;
  const already = kept.find((c) => c.node.id === node.id);
  let chosen: Candidate;
  if (already !== undefined) chosen = { ...already, affinity: true };
  else {
    const parts = partsOf(at, poolRtt[best] ?? 0);
    chosen = { node, rttMs: parts.rttMs, score: parts.rttMs + parts.loadMs + parts.penaltyMs + parts.slowStartMs + parts.priceMs, parts, affinity: true };
  }
  return [chosen, ...kept.filter((c) => c.node.id !== node.id)].slice(0, want);
}

const ALL_SLOTS = 2 ** SLOT_COUNT - 1;

/** The slots present in region r that the policy allows, one bit per slot (0: skip the region). */
function allowedSlotsOf(index: FleetIndex, r: number, allowed: SlotPolicy): number {
  const present = index.regionSlots[r] ?? 0;
  let mask = 0;
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    if ((present & (1 << slot)) !== 0 && allowed(r, slot)) mask |= 1 << slot;
  }
  return mask;
}

function insertRanked(kept: Candidate[], c: Candidate, cap: number): void {
  let at = kept.length;
  while (at > 0) {
    const prev = kept[at - 1];
    if (prev === undefined || prev.score < c.score || (prev.score === c.score && prev.node.id < c.node.id)) break;
    at--;
  }
  kept.splice(at, 0, c);
  if (kept.length > cap) kept.pop();
}

/** Every node that cannot serve the request, with the reason. O(fleet): for explanations only. */
export function explainExclusions(index: FleetIndex, requirements: Requirements, filter?: NodeFilter): Exclusion[] {
  const { wantKind, wantClass } = wanted(requirements);
  const out: Exclusion[] = [];
  const unknown = new Set(index.unknownRegion);
  index.records.forEach((node, i) => {
    if (node === undefined) return;
    const reason = unknown.has(i)
      ? "unknown-region"
      : (ineligibility(index, i, requirements, wantKind, wantClass) ?? filter?.(node) ?? null);
    if (reason !== null) out.push({ id: node.id, region: node.region, reason });
  });
  return out;
}
