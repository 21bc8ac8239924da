import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { REGIONS, TERRITORIES, countryCentroid, pointInPolygon, pointInRing, territoryAt, territoryOfSubdivision, type PolygonGeometry } from "../src/index";

const dir = join(import.meta.dirname, "..", "..", "..", "infra", "territories");

describe("territory data", () => {
  it("is exactly infra/territories/*.json (regenerate with npx tsx scripts/territories.ts)", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    const fromJson = files.map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as { id: string });
    const byId = new Map(fromJson.map((t) => [t.id, t]));
    expect(TERRITORIES.map((t) => t.id).sort()).toEqual([...byId.keys()].sort());
    for (const t of TERRITORIES) expect(t).toEqual(byId.get(t.id));
  });

  it("maps each territory to its ISO 3166-2 subdivision, with a source and a date", () => {
    const subdivisions = Object.fromEntries(TERRITORIES.map((t) => [t.id, t.properties.subdivision]));
    expect(subdivisions).toEqual({ sevastopol: "UA-40", crimea: "UA-43", dnr: "UA-14", lnr: "UA-09" });
    for (const t of TERRITORIES) {
      expect(t.properties.country).toBe("UA");
      expect(t.properties.source.length).toBeGreaterThan(20);
      expect(t.properties.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(Number.isNaN(Date.parse(t.properties.date))).toBe(false);
    }
  });

  it("has closed outlines of 10 to 60 points in lon/lat order", () => {
    for (const t of TERRITORIES) {
      const ring = t.geometry.coordinates[0] ?? [];
      expect(ring.length - 1, t.id).toBeGreaterThanOrEqual(10);
      expect(ring.length - 1, t.id).toBeLessThanOrEqual(60);
      expect(ring[0]).toEqual(ring[ring.length - 1]);
      // Ukraine lies between 22-41 E and 44-53 N: a swapped pair would fall outside.
      for (const [lon, lat] of ring) {
        expect(lon).toBeGreaterThan(30);
        expect(lon).toBeLessThan(41);
        expect(lat).toBeGreaterThan(44);
        expect(lat).toBeLessThan(51);
      }
    }
  });

  it("checks Sevastopol before Crimea, which contains it", () => {
    const ids = TERRITORIES.map((t) => t.id);
    expect(ids.indexOf("sevastopol")).toBeLessThan(ids.indexOf("crimea"));
    const crimea = TERRITORIES.find((t) => t.id === "crimea");
    const sevastopol = TERRITORIES.find((t) => t.id === "sevastopol");
    if (crimea === undefined || sevastopol === undefined) throw new Error("missing territory");
    for (const [lon, lat] of sevastopol.geometry.coordinates[0] ?? []) expect(pointInPolygon(lon, lat, crimea.geometry), `${lon},${lat}`).toBe(true);
  });

  it("names the place behind every vertex of the hand-drawn outlines", () => {
    for (const id of ["crimea", "dnr", "lnr"]) {
      const t = TERRITORIES.find((x) => x.id === id);
      const ring = t?.geometry.coordinates[0] ?? [];
      const landmarks = t?.properties.landmarks ?? [];
      expect(landmarks.length, id).toBe(ring.length - 1);
      for (const landmark of landmarks) expect(landmark.length, id).toBeGreaterThan(10);
    }
  });

  it("leaves no gap between the DNR and LNR outlines along their shared border", () => {
    // The vertices on the Donetsk-Luhansk oblast border (and its two junctions) are the same in both files.
    const onSharedBorder = (id: string) => {
      const t = TERRITORIES.find((x) => x.id === id);
      const ring = t?.geometry.coordinates[0] ?? [];
      const landmarks = t?.properties.landmarks ?? [];
      return ring.slice(0, -1).filter((_, i) => /Donetsk-Luhansk oblast border|junction of the Donetsk/.test(landmarks[i] ?? ""));
    };
    const key = ([lon, lat]: readonly [number, number]) => `${lon},${lat}`;
    const shared = onSharedBorder("dnr");
    expect(shared.map(key).sort()).toEqual(onSharedBorder("lnr").map(key).sort());
    expect(shared.length).toBeGreaterThanOrEqual(6);
    const sharedKeys = new Set(shared.map(key));
    const dnr = TERRITORIES.find((t) => t.id === "dnr")?.geometry.coordinates[0] ?? [];
    let sharedEdges = 0;
    for (let i = 0; i + 1 < dnr.length; i++) {
      const a = dnr[i];
      const b = dnr[i + 1];
      if (a === undefined || b === undefined || !sharedKeys.has(key(a)) || !sharedKeys.has(key(b))) continue;
      sharedEdges++;
      // Points just either side of the edge belong to one of the two.
      for (const f of [0.1, 0.5, 0.9]) {
        const lon = a[0] + f * (b[0] - a[0]);
        const lat = a[1] + f * (b[1] - a[1]);
        for (const d of [-0.002, 0.002]) expect(territoryAt(lat, lon + d)?.id, `${lat},${lon + d}`).toMatch(/^(dnr|lnr)$/);
      }
    }
    expect(sharedEdges).toBe(shared.length - 1);
  });
});

describe("point in polygon", () => {
  const square: PolygonGeometry = { type: "Polygon", coordinates: [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]] };
  const withHole: PolygonGeometry = { type: "Polygon", coordinates: [square.coordinates[0] ?? [], [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]] };
  // A "C" shape: the notch (x 3..10, y 3..7) is outside.
  const concave: PolygonGeometry = { type: "Polygon", coordinates: [[[0, 0], [10, 0], [10, 3], [3, 3], [3, 7], [10, 7], [10, 10], [0, 10], [0, 0]]] };

  it("finds inside, outside, edges and vertices (edges count as inside)", () => {
    expect(pointInPolygon(5, 5, square)).toBe(true);
    expect(pointInPolygon(11, 5, square)).toBe(false);
    expect(pointInPolygon(-0.001, 5, square)).toBe(false);
    expect(pointInPolygon(0, 5, square)).toBe(true);
    expect(pointInPolygon(10, 10, square)).toBe(true);
    expect(pointInPolygon(5, 0, square)).toBe(true);
  });

  it("excludes holes but keeps a hole's edge", () => {
    expect(pointInPolygon(5, 5, withHole)).toBe(false);
    expect(pointInPolygon(4, 5, withHole)).toBe(true);
    expect(pointInPolygon(2, 2, withHole)).toBe(true);
  });

  it("handles concave outlines", () => {
    expect(pointInPolygon(5, 5, concave)).toBe(false);
    expect(pointInPolygon(1, 5, concave)).toBe(true);
    expect(pointInPolygon(5, 1, concave)).toBe(true);
    expect(pointInPolygon(5, 8.5, concave)).toBe(true);
  });

  it("agrees with a rectangle test for any axis-aligned rectangle and point", () => {
    const coord = fc.double({ min: -50, max: 50, noNaN: true });
    fc.assert(
      fc.property(coord, coord, coord, coord, coord, coord, (x1, x2, y1, y2, px, py) => {
        const [minX, maxX] = x1 <= x2 ? [x1, x2] : [x2, x1];
        const [minY, maxY] = y1 <= y2 ? [y1, y2] : [y2, y1];
        fc.pre(maxX - minX > 1e-6 && maxY - minY > 1e-6);
        const ring = [[minX, minY], [maxX, minY], [maxX, maxY], [minX, maxY], [minX, minY]] as const;
        const expected = px >= minX && px <= maxX && py >= minY && py <= maxY;
        expect(pointInRing(px, py, ring)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });
});

describe("territoryAt", () => {
  const cases: [string, number, number, string | undefined][] = [
    ["Sevastopol", 44.6166, 33.5254, "sevastopol"],
    ["Balaklava", 44.5, 33.6, "sevastopol"],
    ["Inkerman", 44.614, 33.608, "sevastopol"],
    ["Simferopol", 44.9521, 34.1024, "crimea"],
    ["Yalta", 44.4952, 34.1663, "crimea"],
    ["Kerch", 45.3563, 36.4674, "crimea"],
    ["Yevpatoria", 45.1904, 33.3669, "crimea"],
    ["Dzhankoi", 45.7086, 34.3933, "crimea"],
    ["Armiansk", 46.1059, 33.6919, "crimea"],
    ["Donetsk", 48.0159, 37.8028, "dnr"],
    ["Mariupol", 47.0971, 37.5434, "dnr"],
    ["Kramatorsk", 48.7389, 37.5848, "dnr"],
    ["Sloviansk", 48.8667, 37.6167, "dnr"],
    ["Horlivka", 48.3336, 38.0925, "dnr"],
    ["Luhansk", 48.574, 39.3078, "lnr"],
    ["Sievierodonetsk", 48.948, 38.4917, "lnr"],
    ["Starobilsk", 49.2786, 38.9103, "lnr"],
    // Near the outlines' edges: each side of the Donetsk-Luhansk line and of the outer borders.
    ["Feodosia", 45.0319, 35.3824, "crimea"],
    ["Sviatohirsk", 49.0333, 37.5667, "dnr"],
    ["Siversk", 48.8667, 38.1, "dnr"],
    ["Bakhmut", 48.5947, 38.0008, "dnr"],
    ["Velyka Novosilka", 47.8431, 36.8272, "dnr"],
    ["Novoazovsk", 47.1128, 38.0811, "dnr"],
    ["Lysychansk", 48.9047, 38.4275, "lnr"],
    ["Kreminna", 49.0489, 38.2178, "lnr"],
    ["Svatove", 49.41, 38.1633, "lnr"],
    ["Stanytsia Luhanska", 48.6528, 39.4894, "lnr"],
    ["Bilovodsk", 49.2089, 39.5806, "lnr"],
    ["Milove", 49.3797, 40.1336, "lnr"],
    ["Henichesk", 46.1731, 34.8147, undefined],
    ["Berdiansk", 46.7567, 36.7986, undefined],
    ["Izium", 49.2103, 37.2583, undefined],
    ["Kupiansk", 49.7114, 37.6158, undefined],
    ["Taganrog", 47.2097, 38.9356, undefined],
    ["Kyiv", 50.4501, 30.5234, undefined],
    ["Kharkiv", 49.9935, 36.2304, undefined],
    ["Zaporizhzhia", 47.8388, 35.1396, undefined],
    ["Kherson", 46.6354, 32.6169, undefined],
    ["Dnipro", 48.4647, 35.0462, undefined],
    ["Rostov-on-Don", 47.2357, 39.7015, undefined],
    ["Moscow", 55.7558, 37.6173, undefined],
    ["Null Island", 0, 0, undefined],
  ];
  it.each(cases)("%s", (_name, lat, lon, expected) => {
    expect(territoryAt(lat, lon)?.id).toBe(expected);
  });

  it("places nothing for non-finite or out-of-range coordinates", () => {
    for (const [lat, lon] of [[Number.NaN, 33.5], [44.6, Number.NaN], [Infinity, 0], [91, 33.5], [44.6, 181]] as const) {
      expect(territoryAt(lat, lon)).toBeUndefined();
    }
  });

  it("agrees with the catalog's own embargoed metros", () => {
    for (const region of REGIONS) {
      const t = territoryAt(region.lat, region.lon);
      if (region.subdivision === "UA-43" || region.subdivision === "UA-14") expect(t?.properties.subdivision, region.id).toBe(region.subdivision);
      else if (region.country !== "UA") expect(t, region.id).toBeUndefined();
    }
  });

  it("resolves subdivision codes and geo-IP aliases", () => {
    expect(territoryOfSubdivision("UA-40")?.id).toBe("sevastopol");
    expect(territoryOfSubdivision("UA-43")?.id).toBe("crimea");
    expect(territoryOfSubdivision("RU-CR")?.id).toBe("crimea");
    expect(territoryOfSubdivision("RU-SEV")?.id).toBe("sevastopol");
    expect(territoryOfSubdivision("UA-14")?.id).toBe("dnr");
    expect(territoryOfSubdivision("UA-09")?.id).toBe("lnr");
    expect(territoryOfSubdivision("UA-30")).toBeUndefined();
  });
});

describe("countryCentroid", () => {
  it("is the metro itself for a one-metro country and undefined for a country without metros", () => {
    const counts = new Map<string, number>();
    for (const r of REGIONS) counts.set(r.country, (counts.get(r.country) ?? 0) + 1);
    for (const r of REGIONS) {
      if (counts.get(r.country) !== 1) continue;
      const c = countryCentroid(r.country);
      expect(c?.lat).toBeCloseTo(r.lat, 3);
      expect(c?.lon).toBeCloseTo(r.lon, 3);
    }
    expect(countryCentroid("AQ")).toBeUndefined();
    expect(countryCentroid("XX")).toBeUndefined();
  });

  it("lies within the bounding box of the country's metros", () => {
    for (const country of new Set(REGIONS.map((r) => r.country))) {
      const metros = REGIONS.filter((r) => r.country === country);
      const c = countryCentroid(country);
      expect(c, country).toBeDefined();
      if (c === undefined) continue;
      expect(c.lat).toBeGreaterThanOrEqual(Math.min(...metros.map((m) => m.lat)) - 1e-3);
      expect(c.lat).toBeLessThanOrEqual(Math.max(...metros.map((m) => m.lat)) + 1e-3);
      expect(c.lon).toBeGreaterThanOrEqual(Math.min(...metros.map((m) => m.lon)) - 1e-3);
      expect(c.lon).toBeLessThanOrEqual(Math.max(...metros.map((m) => m.lon)) + 1e-3);
    }
  });
});
