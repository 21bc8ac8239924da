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
