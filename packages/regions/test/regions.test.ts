import { describe, expect, it } from "vitest";
import {
  type Continent,
  EARTH_RADIUS_KM,
  estimateRttMs,
  getRegion,
  greatCircleKm,
  isRegionId,
  nearestRegion,
  REGION_IDS,
  REGIONS,
  regionIndex,
} from "../src/index";

const CONTINENTS: readonly Continent[] = ["AF", "AS", "EU", "NA", "SA", "OC"];

function decimals(n: number): number {
  const s = String(n);
  const dot = s.indexOf(".");
  return dot === -1 ? 0 : s.length - dot - 1;
}

describe("catalog", () => {
  it("has at least 90 regions", () => {
    expect(REGIONS.length).toBeGreaterThanOrEqual(90);
  });

  it("has unique lowercase 3-letter ids", () => {
    const ids = REGIONS.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z]{3}$/);
  });

  it("uses ISO alpha-2 countries and matching ISO 3166-2 subdivisions", () => {
    for (const r of REGIONS) {
      expect(r.country, r.id).toMatch(/^[A-Z]{2}$/);
      if (r.subdivision !== undefined) {
        expect(r.subdivision.startsWith(`${r.country}-`), `${r.id} ${r.subdivision}`).toBe(true);
        expect(r.subdivision, r.id).toMatch(/^[A-Z]{2}-[A-Z0-9]{1,3}$/);
      }
    }
  });

  it("gives a subdivision for every country where residency law depends on it", () => {
    const needs = new Set(["US", "CA", "CN", "IN", "RU", "UA", "AU", "BR"]);
    for (const r of REGIONS) {
      if (needs.has(r.country)) expect(r.subdivision, r.id).toBeDefined();
    }
  });

  it("has valid coordinates with at most 4 decimals", () => {
    for (const r of REGIONS) {
      expect(Number.isFinite(r.lat), r.id).toBe(true);
      expect(Number.isFinite(r.lon), r.id).toBe(true);
      expect(r.lat, r.id).toBeGreaterThanOrEqual(-90);
      expect(r.lat, r.id).toBeLessThanOrEqual(90);
      expect(r.lon, r.id).toBeGreaterThanOrEqual(-180);
      expect(r.lon, r.id).toBeLessThanOrEqual(180);
      expect(decimals(r.lat), `${r.id} lat ${r.lat}`).toBeLessThanOrEqual(4);
      expect(decimals(r.lon), `${r.id} lon ${r.lon}`).toBeLessThanOrEqual(4);
    }
  });

  it("has at least 3 regions on every inhabited continent", () => {
    for (const c of CONTINENTS) {
      expect(REGIONS.filter((r) => r.continent === c).length, c).toBeGreaterThanOrEqual(3);
    }
  });

  it("includes the regions needed by sanctions policies", () => {
    expect(getRegion("hav")?.country).toBe("CU");
    expect(getRegion("fnj")?.country).toBe("KP");
    expect(getRegion("sip")?.subdivision).toBe("UA-43");
    expect(getRegion("dok")?.subdivision).toBe("UA-14");
    expect(getRegion("kbp")?.subdivision).toBe("UA-30");
  });

  it.each([
    ["nrt", "Tokyo", 35.6762, 139.6503],
    ["fra", "Frankfurt", 50.1109, 8.6821],
    ["gru", "São Paulo", -23.5505, -46.6333],
    ["syd", "Sydney", -33.8688, 151.2093],
    ["iad", "Ashburn", 39.0438, -77.4874],
    ["lhr", "London", 51.5074, -0.1278],
  ] as const)("places %s (%s) at its real coordinates", (id, city, lat, lon) => {
    const r = getRegion(id);
    expect(r).toBeDefined();
    expect(r?.city).toBe(city);
    expect(Math.abs((r?.lat ?? Number.NaN) - lat)).toBeLessThanOrEqual(0.05);
    expect(Math.abs((r?.lon ?? Number.NaN) - lon)).toBeLessThanOrEqual(0.05);
  });

  it("puts continents and hemispheres the right way round", () => {
    for (const r of REGIONS) {
      if (r.continent === "NA" || r.continent === "SA") expect(r.lon, r.id).toBeLessThan(0);
      if (r.continent === "AS" || r.continent === "OC") expect(r.lon, r.id).toBeGreaterThan(0);
      if (r.country === "AU" || r.country === "NZ" || r.country === "AR" || r.country === "ZA") {
        expect(r.lat, r.id).toBeLessThan(0);
      }
    }
  });
});

describe("geo", () => {
  it("uses the mean Earth radius", () => {
    expect(EARTH_RADIUS_KM).toBe(6371.0088);
  });

  it("measures London to New York at about 5570 km", () => {
    expect(greatCircleKm(51.5074, -0.1278, 40.7128, -74.006)).toBeGreaterThan(5550);
    expect(greatCircleKm(51.5074, -0.1278, 40.7128, -74.006)).toBeLessThan(5590);
  });

  it("measures Tokyo to Osaka at about 400 km", () => {
    const tokyo = getRegion("nrt");
    const osaka = getRegion("kix");
    if (tokyo === undefined || osaka === undefined) throw new Error("missing nrt/kix");
    const km = greatCircleKm(tokyo.lat, tokyo.lon, osaka.lat, osaka.lon);
    expect(Math.abs(km - 400)).toBeLessThanOrEqual(15);
  });

  it("is symmetric and zero for the same point", () => {
    const pairs: ReadonlyArray<readonly [number, number, number, number]> = [
      [51.5074, -0.1278, 40.7128, -74.006],
      [-33.8688, 151.2093, 35.6762, 139.6503],
      [0, 179.9, 0, -179.9],
    ];
    for (const [a, b, c, d] of pairs) {
      expect(greatCircleKm(a, b, c, d)).toBeCloseTo(greatCircleKm(c, d, a, b), 9);
    }
    expect(greatCircleKm(50.1109, 8.6821, 50.1109, 8.6821)).toBe(0);
    // Across the antimeridian the short way round, not ~40,000 km.
    expect(greatCircleKm(0, 179.9, 0, -179.9)).toBeLessThan(25);
    // Antipodes: half the circumference.
    expect(greatCircleKm(0, 0, 0, 180)).toBeCloseTo(Math.PI * EARTH_RADIUS_KM, 6);
  });

  it("estimates RTT with a 1 ms floor, rising with distance", () => {
    expect(estimateRttMs(0)).toBe(1);
    expect(estimateRttMs(200)).toBeCloseTo(4, 9);
    let prev = estimateRttMs(0);
    for (let km = 100; km <= 20_000; km += 100) {
      const rtt = estimateRttMs(km);
      expect(rtt).toBeGreaterThan(prev);
      prev = rtt;
    }
  });
});

describe("lookups", () => {
  it("finds Tokyo nearest to central Tokyo", () => {
    expect(nearestRegion(35.68, 139.76).id).toBe("nrt");
  });

  it("finds every region nearest to its own coordinates", () => {
    for (const r of REGIONS) expect(nearestRegion(r.lat, r.lon).id).toBe(r.id);
  });

  it("returns undefined / false / -1 for unknown ids", () => {
    expect(getRegion("nope")).toBeUndefined();
    expect(isRegionId("nope")).toBe(false);
    expect(regionIndex("nope")).toBe(-1);
    expect(getRegion("NRT")).toBeUndefined();
  });

  it("round-trips ids through dense indices in catalog order", () => {
    expect(REGION_IDS.length).toBe(REGIONS.length);
    REGIONS.forEach((r, i) => {
      expect(REGION_IDS[i]).toBe(r.id);
      expect(regionIndex(r.id)).toBe(i);
      expect(isRegionId(r.id)).toBe(true);
      expect(getRegion(r.id)).toBe(r);
    });
  });
});
