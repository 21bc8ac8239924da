import type { CarrierPartner, NodeRecord, OffloadRules } from "@meridian/protocol";
import { getRegion, greatCircleKm, nearestRegion } from "@meridian/regions";
import { KIND_CODE, type FleetIndex } from "./fleet-index";
import { ineligibility, route, type Candidate, type ClientPoint, type NodeFilter, type SlotPolicy } from "./route";

/**
 * Carrier offload: a partner's subscriber request goes to a community hotspot when one is
 * near, healthy and good enough and the subscriber falls inside the offload dial; otherwise
 * to the partner's nearest healthy backbone node. Pure: the gateway feeds it the fleet index,
 * the partner's rules and a DialBook, and reads the answer.
 */

/** Whether the backbone's congestion has engaged the boost: a Schmitt trigger, so it does not flap. */
export function nextEngaged(engaged: boolean, congestion: number, rules: OffloadRules): boolean {
  if (congestion >= rules.congestionThreshold) return true;
  if (congestion < rules.congestionThreshold - rules.hysteresis) return false;
  return engaged;
}

/**
 * The dial in percent. Disengaged: base. Engaged: from base at the release level
 * (threshold - hysteresis) up to max at full congestion, so it rises with congestion and
 * comes down smoothly to base before the boost disengages.
 */
export function dialPercent(engaged: boolean, congestion: number, rules: OffloadRules): number {
  const { base, max } = rules.dial;
  if (!engaged) return base;
  const release = rules.congestionThreshold - rules.hysteresis;
  const span = 1 - release;
  const rise = span <= 0 ? 1 : Math.min(1, Math.max(0, (congestion - release) / span));
  return base + (max - base) * rise;
}

export interface DialReading {
  percent: number;
  engaged: boolean;
  congestion: number;
}

/**
 * Boost state per backbone node. It is memory of the congestion readings seen; every gateway
 * isolate sees the same readings from the same snapshots, so their books agree (a new isolate
 * starts disengaged, which only matters while congestion sits inside the hysteresis band).
 */
export class DialBook {
  private readonly engagedBy = new Map<string, boolean>();

  read(backbone: NodeRecord, rules: OffloadRules): DialReading {
    const congestion = backbone.congestion ?? 0;
    const engaged = nextEngaged(this.engagedBy.get(backbone.id) ?? false, congestion, rules);
    if (engaged) this.engagedBy.set(backbone.id, true);
    else this.engagedBy.delete(backbone.id);
    return { percent: dialPercent(engaged, congestion, rules), engaged, congestion };
  }

  /** Backbone nodes currently boosted. */
  engaged(): string[] {
    return [...this.engagedBy.keys()];
  }
}

/**
 * Where a subscriber sits on the dial, in [0, 100): a stable hash of the subscriber key, so one
 * subscriber stays on one side while the dial holds still and only the margin moves when it
 * turns (no flapping between hotspot and backbone from request to request).
 */
export function subscriberBucket(key: string): number {
  // FNV-1a then murmur3's finalizer: FNV alone leaves sequential keys ("sub-1", "sub-2")
  // clustered in the high bits. Not a security boundary.
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return ((hash >>> 0) / 0x1_0000_0000) * 100;
}

export type OffloadReason =
  /** Offloaded: inside the base dial. */
  | "dial"
  /** Offloaded: inside the dial only because backbone congestion raised it. */
  | "congestion"
  /** Offloaded: the partner has no healthy backbone node this client may use. */
  | "backbone-unavailable"
  /** Backbone: the subscriber is outside the dial. */
  | "outside-dial"
  /** Backbone: no hotspot within reach, good enough, healthy, free and allowed. */
  | "no-qualifying-hotspot"
  | "outside-partner-regions"
  | "client-location-unknown";

export interface OffloadDecision {
  /** "none": neither a hotspot nor a backbone node can take the request. */
  route: "offload" | "backbone" | "none";
  reason: OffloadReason;
  /** Best first; an offload keeps the nearest backbone node as its fallback. */
  candidates: Candidate[];
  /** The catalog region the subscriber is in (nearest region), when known. */
  clientRegion: string | null;
  /** Dial of the backbone node that would serve, or null when there is none. */
  dial: (DialReading & { backbone: string }) | null;
  bucket: number;
  examined: number;
}

export interface OffloadInput {
  client: ClientPoint | null;
  partner: CarrierPartner;
  /** subscriberBucket() of this subscriber. */
  bucket: number;
  dials: DialBook;
  allowed?: SlotPolicy;
  /** Extra per-node exclusion (ejections). */
  filter?: NodeFilter;
}

/** Why a hotspot within reach does not qualify on quality, or null when it does. */
export function hotspotQualityIssue(node: NodeRecord, rules: OffloadRules): "tier-unknown" | "tier-too-low" | null {
  if (node.tier === undefined) return "tier-unknown";
  return node.tier < rules.minTier ? "tier-too-low" : null;
}

export function chooseOffload(index: FleetIndex, input: OffloadInput): OffloadDecision {
  const { partner, client, bucket, filter } = input;
  const rules = partner.offload;
  const backbone = route(index, {
    client,
    requirements: { kind: "carrier" },
    fallbacks: 1,
    ...(input.allowed ? { allowed: input.allowed } : {}),
    filter: (n) => (n.partner !== partner.id ? "other-partner" : (filter?.(n) ?? null)),
  });
  let examined = backbone.examined;
  const primary = backbone.candidates[0];
  const clientRegion = client === null ? null : nearestRegion(client.lat, client.lon).id;
  const dial = primary === undefined ? null : { ...input.dials.read(primary.node, rules), backbone: primary.node.id };
  const answer = (routeName: OffloadDecision["route"], reason: OffloadReason, candidates: Candidate[]): OffloadDecision => ({
    route: candidates.length === 0 ? "none" : routeName,
    reason,
    candidates,
    clientRegion,
    dial,
    bucket,
    examined,
  });

  // Without a location, distance rules cannot be judged: stay on the backbone.
  if (client === null) return answer("backbone", "client-location-unknown", backbone.candidates);
  if (clientRegion === null || !partner.regions.includes(clientRegion)) return answer("backbone", "outside-partner-regions", backbone.candidates);
  if (dial !== null && bucket >= dial.percent) return answer("backbone", "outside-dial", backbone.candidates);

  const hotspots = route(index, {
    client,
    requirements: { kind: "hotspot" },
    fallbacks: 0,
    maxDistanceKm: rules.maxHotspotKm,
    ...(input.allowed ? { allowed: input.allowed } : {}),
    filter: (n) => hotspotQualityIssue(n, rules) ?? filter?.(n) ?? null,
  });
  examined += hotspots.examined;
  const hotspot = hotspots.candidates[0];
  if (hotspot === undefined) return answer("backbone", "no-qualifying-hotspot", backbone.candidates);
  const reason: OffloadReason = dial === null ? "backbone-unavailable" : bucket < rules.dial.base ? "dial" : "congestion";
  return answer("offload", reason, primary === undefined ? [hotspot] : [hotspot, primary]);
}

export interface HotspotCensus {
  /** Distance to the nearest hotspot of any state, km (null when the fleet has none). */
  nearestKm: number | null;
  withinReach: number;
  /** Of those within reach: why they do not qualify. */
  excluded: Record<string, number>;
  qualifying: number;
}

/**
 * Every hotspot near the client, sorted by why it does or does not qualify (health, capacity,
 * quality, then `exclude`: policy and ejections). O(fleet): for GET /route explanations only.
 */
export function hotspotCensus(index: FleetIndex, client: ClientPoint, rules: OffloadRules, exclude: NodeFilter): HotspotCensus {
  const census: HotspotCensus = { nearestKm: null, withinReach: 0, excluded: {}, qualifying: 0 };
  for (let i = 0; i < index.records.length; i++) {
    const node = index.records[i];
    if (node === undefined || node.kind !== "hotspot") continue;
    const region = getRegion(node.region);
    if (region === undefined) continue;
    const km = greatCircleKm(client.lat, client.lon, region.lat, region.lon);
    census.nearestKm = census.nearestKm === null ? km : Math.min(census.nearestKm, km);
    if (km > rules.maxHotspotKm) continue;
    census.withinReach++;
    const why = ineligibility(index, i, { kind: "hotspot" }, KIND_CODE.hotspot, 0) ?? hotspotQualityIssue(node, rules) ?? exclude(node) ?? (node.geoFlag !== undefined ? "geo-flagged (ranked last)" : null);
    if (why === null || why.startsWith("geo-flagged")) census.qualifying++;
    if (why !== null) census.excluded[why] = (census.excluded[why] ?? 0) + 1;
  }
  if (census.nearestKm !== null) census.nearestKm = Math.round(census.nearestKm);
  return census;
}
