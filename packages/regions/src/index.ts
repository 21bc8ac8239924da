import { REGIONS, type Region } from "./catalog";
import { greatCircleKm } from "./geo";

export { REGIONS } from "./catalog";
export type { Continent, Region } from "./catalog";
export { EARTH_RADIUS_KM, estimateRttMs, greatCircleKm } from "./geo";

/** Region ids in catalog order; `REGION_IDS[i] === REGIONS[i].id`. */
export const REGION_IDS: readonly string[] = Object.freeze(REGIONS.map((r) => r.id));

const INDEX_BY_ID: ReadonlyMap<string, number> = new Map(REGIONS.map((r, i) => [r.id, i] as const));

/** The region with this id, or `undefined`. O(1). */
export function getRegion(id: string): Region | undefined {
  const i = INDEX_BY_ID.get(id);
  return i === undefined ? undefined : REGIONS[i];
}

/** Whether `id` names a region in the catalog. */
export function isRegionId(id: string): boolean {
  return INDEX_BY_ID.has(id);
}

/** Dense position of the region in `REGIONS`, or -1 when unknown. */
export function regionIndex(id: string): number {
  return INDEX_BY_ID.get(id) ?? -1;
}

/** The catalog region closest (great-circle) to the given point. Ties keep catalog order. */
export function nearestRegion(lat: number, lon: number): Region {
  const first = REGIONS[0];
  if (first === undefined) throw new Error("region catalog is empty");
  let best: Region = first;
  let bestKm = greatCircleKm(lat, lon, first.lat, first.lon);
  for (let i = 1; i < REGIONS.length; i++) {
    const r = REGIONS[i];
    if (r === undefined) continue;
    const km = greatCircleKm(lat, lon, r.lat, r.lon);
    if (km < bestKm) {
      best = r;
      bestKm = km;
    }
  }
  return best;
}

export {
  TERRITORIES,
  pointInPolygon,
  pointInRing,
  territoryAt,
  territoryOfSubdivision,
  type PolygonGeometry,
  type Position,
  type Ring,
  type TerritoryFeature,
} from "./territories";

const DEG = Math.PI / 180;

/**
 * Where to rank a client from when only its country is known: the spherical mean of the
 * catalog's metros in that country (a single metro is itself). Only ranking uses it; the
 * country, not this point, is what policy judges.
 */
function buildCountryCentroids(): ReadonlyMap<string, { lat: number; lon: number }> {
  const sums = new Map<string, { x: number; y: number; z: number }>();
  for (const r of REGIONS) {
    const s = sums.get(r.country) ?? { x: 0, y: 0, z: 0 };
    s.x += Math.cos(r.lat * DEG) * Math.cos(r.lon * DEG);
    s.y += Math.cos(r.lat * DEG) * Math.sin(r.lon * DEG);
    s.z += Math.sin(r.lat * DEG);
    sums.set(r.country, s);
  }
  const out = new Map<string, { lat: number; lon: number }>();
  for (const [country, { x, y, z }] of sums) {
    const round = (v: number) => Math.round(v * 1e4) / 1e4;
    out.set(country, { lat: round(Math.atan2(z, Math.hypot(x, y)) / DEG), lon: round(Math.atan2(y, x) / DEG) });
  }
  return out;
}

const COUNTRY_CENTROIDS = buildCountryCentroids();

/** The ranking point of a country the catalog has metros in, or undefined. */
export function countryCentroid(country: string): { lat: number; lon: number } | undefined {
  return COUNTRY_CENTROIDS.get(country);
}
