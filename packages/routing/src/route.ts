import type { NodeRecord, Requirements } from "@meridian/protocol";
import { EARTH_RADIUS_KM, REGIONS, estimateRttMs } from "@meridian/regions";
import { FleetIndex, KIND_CODE, REGION_X, REGION_Y, REGION_Z, SLOT_COUNT, gpuClassCode, slowStartPenaltyMs, unitVector } from "./fleet-index";

/** Milliseconds of estimated RTT that a fully loaded node is worth: load breaks near-ties. */
export const LOAD_PENALTY_MS = 25;
export const DEFAULT_FALLBACKS = 2;

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
}

export interface Candidate {
  node: NodeRecord;
  rttMs: number;
  score: number;
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

/** Why a node cannot serve a request with these requirements, or null if it can. */
export function ineligibility(index: FleetIndex, i: number, req: Requirements, wantKind: number, wantClass: number): ExclusionReason | null {
  const record = index.records[i];
  if (index.healthy[i] !== 1) return record?.health === "draining" ? "draining" : "unhealthy";
  if (wantKind !== 0 && index.kind[i] !== wantKind) return "kind-mismatch";
  if (wantClass !== 0 && index.gpuClass[i] !== wantClass) return "gpu-class-mismatch";
  if (req.minVramGb !== undefined && (index.vramGb[i] ?? 0) < req.minVramGb) return "vram-too-small";
  if ((index.free[i] ?? 0) <= 0) return "no-free-capacity";
  return null;
}

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
  const kept: Candidate[] = [];
  const now = input.now ?? Date.now();
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
    const worst = kept.length === want ? kept[want - 1] : undefined;
    if (worst !== undefined && rtt > worst.score) break;
    const members = index.regionNodes[r];
    if (members === undefined || members.length === 0) continue;
    // Slots of this region the policy allows (bit per slot); all when there is no policy.
    const allowedSlots = input.allowed === undefined ? ALL_SLOTS : allowedSlotsOf(index, r, input.allowed);
    if (allowedSlots === 0) continue;
    for (let m = 0; m < members.length; m++) {
      const i = members[m] ?? 0;
      examined++;
      if (ineligibility(index, i, input.requirements, wantKind, wantClass) !== null) continue;
      if (((allowedSlots >>> (index.slot[i] ?? 0)) & 1) === 0) continue;
      const returnedAt = index.returnedAt[i] ?? 0;
      const slowStart = returnedAt === 0 ? 0 : slowStartPenaltyMs(returnedAt, now);
      const score = rtt + (index.load[i] ?? 0) * LOAD_PENALTY_MS + (index.penaltyMs[i] ?? 0) + slowStart;
      const last = kept.length === want ? kept[want - 1] : undefined;
      const node = index.records[i];
      if (node === undefined) continue;
      if (last !== undefined && (score > last.score || (score === last.score && node.id >= last.node.id))) continue;
      if (input.filter !== undefined && input.filter(node) !== null) continue;
      insertRanked(kept, { node, rttMs: rtt, score }, want);
    }
  }
  return { candidates: kept, examined };
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
