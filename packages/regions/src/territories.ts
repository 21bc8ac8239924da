import { TERRITORY_DATA } from "./territories-data";
import type { PolygonGeometry, Ring, TerritoryFeature } from "./territory-feature";

export type { PolygonGeometry, Position, Ring, TerritoryFeature } from "./territory-feature";

/** Checked in this order: the smaller territory inside a larger one comes first (Sevastopol before Crimea). */
export const TERRITORIES: readonly TerritoryFeature[] = TERRITORY_DATA;

/**
 * Whether a point lies inside a ring or on its edge (even-odd ray casting). The edge counts
 * as inside: the territories err towards inclusion.
 */
export function pointInRing(lon: number, lat: number, ring: Ring): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const a = ring[i];
    const b = ring[j];
    if (a === undefined || b === undefined) continue;
    const [ax, ay] = a;
    const [bx, by] = b;
    if (onSegment(lon, lat, ax, ay, bx, by)) return true;
    if (ay > lat !== by > lat && lon < ((bx - ax) * (lat - ay)) / (by - ay) + ax) inside = !inside;
  }
  return inside;
}

const EDGE_EPSILON = 1e-12;

function onSegment(px: number, py: number, ax: number, ay: number, bx: number, by: number): boolean {
  const cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax);
  if (Math.abs(cross) > EDGE_EPSILON) return false;
  return px >= Math.min(ax, bx) && px <= Math.max(ax, bx) && py >= Math.min(ay, by) && py <= Math.max(ay, by);
}

/** Inside the outline and not strictly inside a hole (a hole's edge still counts as inside). */
export function pointInPolygon(lon: number, lat: number, polygon: PolygonGeometry): boolean {
  const [outline, ...holes] = polygon.coordinates;
  if (outline === undefined || !pointInRing(lon, lat, outline)) return false;
  return !holes.some((hole) => pointInRing(lon, lat, hole) && !onRingEdge(lon, lat, hole));
}

function onRingEdge(lon: number, lat: number, ring: Ring): boolean {
  for (let i = 0; i + 1 < ring.length; i++) {
    const a = ring[i];
    const b = ring[i + 1];
    if (a !== undefined && b !== undefined && onSegment(lon, lat, a[0], a[1], b[0], b[1])) return true;
  }
  return false;
}

interface Indexed {
  readonly territory: TerritoryFeature;
  readonly minLon: number;
  readonly maxLon: number;
  readonly minLat: number;
  readonly maxLat: number;
}

/** Bounding boxes, so the common case (a client nowhere near) costs four comparisons a territory. */
const INDEXED: readonly Indexed[] = TERRITORIES.map((territory) => {
  const points = territory.geometry.coordinates[0] ?? [];
  const lons = points.map((p) => p[0]);
  const lats = points.map((p) => p[1]);
  return { territory, minLon: Math.min(...lons), maxLon: Math.max(...lons), minLat: Math.min(...lats), maxLat: Math.max(...lats) };
});

/** The territory containing this point, or undefined. Non-finite or out-of-range input is nowhere. */
export function territoryAt(lat: number, lon: number): TerritoryFeature | undefined {
  if (!(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180)) return undefined;
  for (const t of INDEXED) {
    if (lon < t.minLon || lon > t.maxLon || lat < t.minLat || lat > t.maxLat) continue;
    if (pointInPolygon(lon, lat, t.territory.geometry)) return t.territory;
  }
  return undefined;
}

const BY_SUBDIVISION: ReadonlyMap<string, TerritoryFeature> = new Map(
  TERRITORIES.flatMap((t) => [t.properties.subdivision, ...t.properties.geoIpAliases].map((code) => [code, t] as const)),
);

/** The territory an ISO 3166-2 code (or a geo-IP alias such as RU-CR) names, or undefined. */
export function territoryOfSubdivision(code: string): TerritoryFeature | undefined {
  return BY_SUBDIVISION.get(code);
}
