import { countryCentroid, territoryAt, territoryOfSubdivision, type TerritoryFeature } from "@meridian/regions";
import type { ClientLocation } from "./api";
import { UNKNOWN_COUNTRY } from "./policy";

/**
 * What request.cf says about the client (Cloudflare's field names). Every field may be
 * missing or junk: the type is deliberately loose and locateClient parses it.
 */
export interface CfLocationInput {
  /** ISO 3166-1 alpha-2, "T1" for Tor, "XX" or absent when unknown. */
  country?: unknown;
  /** ISO 3166-2 suffix ("43" for UA-43); a full code ("UA-43") is accepted too. */
  regionCode?: unknown;
  latitude?: unknown;
  longitude?: unknown;
}

export interface LocatedClient {
  /** Where to rank from: the client's coordinates, else its country's (or territory's) centroid, else null. */
  location: ClientLocation | null;
  /** What policy judges: always set; "XX" when unknown or unparseable, "T1" for Tor. */
  country: string;
  /** Full ISO 3166-2 code when known, e.g. "UA-43". */
  subdivision?: string;
  /** Id of the sanctioned territory the client is in (infra/territories), e.g. "crimea". */
  territory?: string;
}

const COUNTRY = /^[A-Z]{2}$|^T1$/;
const REGION_CODE = /^[A-Z0-9]{1,3}$/;
/** Codes that say nothing about a place: no subdivision or centroid is derived from them. */
const PLACELESS = new Set([UNKNOWN_COUNTRY, "T1"]);

function parseCountry(raw: unknown): string {
  if (typeof raw !== "string") return UNKNOWN_COUNTRY;
  const code = raw.trim().toUpperCase();
  return COUNTRY.test(code) ? code : UNKNOWN_COUNTRY;
}

function parseSubdivision(country: string, raw: unknown): string | undefined {
  if (PLACELESS.has(country) || typeof raw !== "string") return undefined;
  let code = raw.trim().toUpperCase();
  if (code.startsWith(`${country}-`)) code = code.slice(country.length + 1);
  return REGION_CODE.test(code) ? `${country}-${code}` : undefined;
}

/** A coordinate as a finite number in range; an empty string is missing, not 0. */
function parseCoordinate(raw: unknown, limit: number): number | undefined {
  let value: number;
  if (typeof raw === "number") value = raw;
  else if (typeof raw === "string" && raw.trim() !== "") value = Number(raw);
  else return undefined;
  return Number.isFinite(value) && value >= -limit && value <= limit ? value : undefined;
}

/** Mean of a territory's outline vertices: a ranking point when only its code is known. */
function territoryCentroid(territory: TerritoryFeature): { lat: number; lon: number } | undefined {
  const ring = territory.geometry.coordinates[0] ?? [];
  const points = ring.slice(0, -1);
  if (points.length === 0) return undefined;
  const lon = points.reduce((s, p) => s + p[0], 0) / points.length;
  const lat = points.reduce((s, p) => s + p[1], 0) / points.length;
  return { lat: Math.round(lat * 1e4) / 1e4, lon: Math.round(lon * 1e4) / 1e4 };
}

/**
 * Where a client is and how policy must judge it, from request.cf. Fails closed:
 * - a country is never dropped: without usable coordinates the client is ranked from the
 *   country's centroid (catalog metros) or not ranked by distance, and still judged by country;
 * - coordinates inside a sanctioned territory (Crimea, Sevastopol, the so-called DNR/LNR) make
 *   the client that territory whatever country geo-IP reports, and so does a subdivision code
 *   naming one (including geo-IP aliases such as RU-CR);
 * - "T1" (Tor) and "XX" (unknown) pass through for explicit policy rules; junk becomes "XX".
 * Pure and total: never throws.
 */
export function locateClient(input: CfLocationInput | null | undefined): LocatedClient {
  const cf = input ?? {};
  const lat = parseCoordinate(cf.latitude, 90);
  const lon = parseCoordinate(cf.longitude, 180);
  const hasPoint = lat !== undefined && lon !== undefined;
  let country = parseCountry(cf.country);
  let subdivision = parseSubdivision(country, cf.regionCode);

  const territory = (hasPoint ? territoryAt(lat, lon) : undefined) ?? (subdivision === undefined ? undefined : territoryOfSubdivision(subdivision));
  if (territory !== undefined) {
    country = territory.properties.country;
    subdivision = territory.properties.subdivision;
  }

  const point = hasPoint ? { lat, lon } : territory !== undefined ? territoryCentroid(territory) : PLACELESS.has(country) ? undefined : countryCentroid(country);
  const location: ClientLocation | null = point === undefined ? null : { lat: point.lat, lon: point.lon, country, ...(subdivision === undefined ? {} : { subdivision }) };
  return {
    location,
    country,
    ...(subdivision === undefined ? {} : { subdivision }),
    ...(territory === undefined ? {} : { territory: territory.id }),
  };
}
