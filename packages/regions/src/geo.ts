/** Mean Earth radius (IUGG), kilometres. */
export const EARTH_RADIUS_KM = 6371.0088;

const DEG_TO_RAD = Math.PI / 180;

/** Great-circle distance in kilometres between two points given in decimal degrees (haversine). */
export function greatCircleKm(aLat: number, aLon: number, bLat: number, bLon: number): number {
  const phi1 = aLat * DEG_TO_RAD;
  const phi2 = bLat * DEG_TO_RAD;
  const dPhi = (bLat - aLat) * DEG_TO_RAD;
  const dLambda = (bLon - aLon) * DEG_TO_RAD;
  const sinHalfDPhi = Math.sin(dPhi / 2);
  const sinHalfDLambda = Math.sin(dLambda / 2);
  const h = sinHalfDPhi * sinHalfDPhi + Math.cos(phi1) * Math.cos(phi2) * sinHalfDLambda * sinHalfDLambda;
  // Clamp against floating-point drift just above 1 for antipodal points.
  const c = 2 * Math.asin(Math.sqrt(Math.min(1, Math.max(0, h))));
  return EARTH_RADIUS_KM * c;
}

/** Light in fibre travels about 200 km per millisecond. */
const FIBRE_KM_PER_MS = 200;
/** Real fibre paths are about 1.5x longer than the great circle. */
const PATH_STRETCH = 1.5;
/** Last-mile / processing floor, milliseconds. */
const RTT_FLOOR_MS = 1;

/**
 * Round-trip time estimate in milliseconds for a great-circle distance in kilometres:
 * `1 + (2 * 1.5 * distanceKm) / 200`.
 */
export function estimateRttMs(distanceKm: number): number {
  return RTT_FLOOR_MS + (2 * PATH_STRETCH * distanceKm) / FIBRE_KM_PER_MS;
}
