import type { NodeRecord, Requirements } from "@meridian/protocol";
import { EARTH_RADIUS_KM, REGIONS, estimateRttMs } from "@meridian/regions";
import { FleetIndex, KIND_CODE, REGION_X, REGION_Y, REGION_Z, gpuClassCode } from "./fleet-index";

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

export interface RouteInput {
  /** null when the client's location is unknown: every region then counts as equally near. */
  client: ClientPoint | null;
  requirements: Requirements;
  fallbacks?: number;
  filter?: NodeFilter;
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
const regionKeys = new Float64Array(REGION_COUNT);
const regionRtt = new Float64Array(REGION_COUNT);

/**
 * Region order key: distance in 1/16 km above the index bits, so one native typed-array
 * sort orders regions by distance with the index riding along.
 */
const INDEX_BITS = 2 ** Math.ceil(Math.log2(REGION_COUNT + 1));

function clientRegionRtts(client: ClientPoint | null): void {
  if (client === null) {
    for (let r = 0; r < REGION_COUNT; r++) {
      regionRtt[r] = 0;
      regionKeys[r] = r;
    }
    return;
  }
  const lat = (client.lat * Math.PI) / 180;
  const lon = (client.lon * Math.PI) / 180;
  const cx = Math.cos(lat) * Math.cos(lon);
  const cy = Math.cos(lat) * Math.sin(lon);
  const cz = Math.sin(lat);
  for (let r = 0; r < REGION_COUNT; r++) {
    const dot = cx * (REGION_X[r] ?? 0) + cy * (REGION_Y[r] ?? 0) + cz * (REGION_Z[r] ?? 0);
    const km = Math.acos(Math.min(1, Math.max(-1, dot))) * EARTH_RADIUS_KM;
    regionRtt[r] = estimateRttMs(km);
    regionKeys[r] = Math.floor(km * 16) * INDEX_BITS + r;
  }
  regionKeys.sort();
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
 */
export function route(index: FleetIndex, input: RouteInput): RouteDecision {
  const want = 1 + (input.fallbacks ?? DEFAULT_FALLBACKS);
  const { wantKind, wantClass } = wanted(input.requirements);
  const kept: Candidate[] = [];
  let examined = 0;
  clientRegionRtts(input.client);
  for (let k = 0; k < REGION_COUNT; k++) {
    const r = (regionKeys[k] ?? 0) % INDEX_BITS;
    const rtt = regionRtt[r] ?? 0;
    const worst = kept.length === want ? kept[want - 1] : undefined;
    if (worst !== undefined && rtt > worst.score) break;
    const members = index.regionNodes[r];
    if (members === undefined) continue;
    for (let m = 0; m < members.length; m++) {
      const i = members[m] ?? 0;
      examined++;
      if (ineligibility(index, i, input.requirements, wantKind, wantClass) !== null) continue;
      const score = rtt + (index.load[i] ?? 0) * LOAD_PENALTY_MS;
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
    const reason = unknown.has(i)
      ? "unknown-region"
      : (ineligibility(index, i, requirements, wantKind, wantClass) ?? filter?.(node) ?? null);
    if (reason !== null) out.push({ id: node.id, region: node.region, reason });
  });
  return out;
}
