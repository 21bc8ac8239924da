import { countryCentroid, territoryAt } from "@meridian/regions";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClientLocationSchema, locateClient } from "../src/index";

const SEVASTOPOL = { latitude: "44.6166", longitude: "33.5254" };
const COUNTRY = /^[A-Z]{2}$|^T1$/;

describe("locateClient", () => {
  it("keeps a country that comes without coordinates and ranks it from the country's centroid", () => {
    const iran = locateClient({ country: "IR" });
    expect(iran.country).toBe("IR");
    const centroid = countryCentroid("IR");
    expect(iran.location).toEqual(centroid === undefined ? null : { ...centroid, country: "IR" });
    expect(locateClient({ country: "CN", regionCode: "BJ" })).toMatchObject({ country: "CN", subdivision: "CN-BJ", location: { country: "CN", subdivision: "CN-BJ" } });
  });

  it("keeps a country the catalog has no metro in, with no location", () => {
    expect(locateClient({ country: "AQ" })).toEqual({ location: null, country: "AQ" });
  });

  it("makes Sevastopol's coordinates UA-40 whatever geo-IP says the country is", () => {
    for (const country of ["RU", "UA", "XX", "T1", undefined, "junk"]) {
      const out = locateClient({ country, ...SEVASTOPOL });
      expect(out).toEqual({
        location: { lat: 44.6166, lon: 33.5254, country: "UA", subdivision: "UA-40" },
        country: "UA",
        subdivision: "UA-40",
        territory: "sevastopol",
      });
    }
  });

  it("places Crimea, Donetsk and Luhansk coordinates reported as RU in their territory", () => {
    expect(locateClient({ country: "RU", regionCode: "ROS", latitude: 44.9521, longitude: 34.1024 })).toMatchObject({ country: "UA", subdivision: "UA-43", territory: "crimea" });
    expect(locateClient({ country: "RU", latitude: 48.0159, longitude: 37.8028 })).toMatchObject({ country: "UA", subdivision: "UA-14", territory: "dnr" });
    expect(locateClient({ country: "RU", latitude: "48.574", longitude: "39.3078" })).toMatchObject({ country: "UA", subdivision: "UA-09", territory: "lnr" });
  });

  it("takes a territory from a subdivision code (or geo-IP alias) when there are no coordinates", () => {
    const crimea = locateClient({ country: "UA", regionCode: "43" });
    expect(crimea).toMatchObject({ country: "UA", subdivision: "UA-43", territory: "crimea" });
    // Ranked from the territory's outline, which must lie in the territory itself.
    expect(crimea.location).not.toBeNull();
    if (crimea.location) expect(territoryAt(crimea.location.lat, crimea.location.lon)?.properties.subdivision).toMatch(/^UA-4[03]$/);
    expect(locateClient({ country: "RU", regionCode: "CR" })).toMatchObject({ country: "UA", subdivision: "UA-43", territory: "crimea" });
    expect(locateClient({ country: "RU", regionCode: "SEV" })).toMatchObject({ country: "UA", subdivision: "UA-40", territory: "sevastopol" });
    expect(locateClient({ country: "UA", regionCode: "UA-14" })).toMatchObject({ subdivision: "UA-14", territory: "dnr" });
  });

  it("keeps an embargoed subdivision that geo-IP reports even when the coordinates are outside", () => {
    expect(locateClient({ country: "UA", regionCode: "09", latitude: 50.45, longitude: 30.52 })).toMatchObject({ subdivision: "UA-09", territory: "lnr", location: { lat: 50.45, lon: 30.52 } });
  });

  it("passes T1 and XX through, with no subdivision and no centroid", () => {
    expect(locateClient({ country: "T1", regionCode: "43" })).toEqual({ location: null, country: "T1" });
    expect(locateClient({ country: "XX" })).toEqual({ location: null, country: "XX" });
    expect(locateClient({ country: "T1", latitude: 52.52, longitude: 13.405 })).toEqual({ location: { lat: 52.52, lon: 13.405, country: "T1" }, country: "T1" });
  });

  it("makes an unknown or junk country XX", () => {
    expect(locateClient(undefined)).toEqual({ location: null, country: "XX" });
    expect(locateClient({})).toEqual({ location: null, country: "XX" });
    expect(locateClient({ country: "Iran" }).country).toBe("XX");
    expect(locateClient({ country: 42 }).country).toBe("XX");
    expect(locateClient({ country: " ir " }).country).toBe("IR");
  });

  it("treats empty, out-of-range and non-numeric coordinates as missing", () => {
    for (const [latitude, longitude] of [["", ""], ["0", ""], ["91", "10"], ["10", "-181"], ["NaN", "1"], ["1e999", "1"], [null, 1], [{}, []], [true, false]] as const) {
      const out = locateClient({ country: "DE", latitude, longitude });
      expect(out.country).toBe("DE");
      const centroid = countryCentroid("DE");
      expect(out.location).toEqual(centroid === undefined ? null : { ...centroid, country: "DE" });
    }
  });

  const junk = fc.oneof(fc.constant(undefined), fc.constant(null), fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.object(), fc.array(fc.anything()));
  const validCountry = fc.oneof(fc.stringMatching(/^[A-Z]{2}$/), fc.constantFrom("T1", "XX", "RU", "UA", "IR", "CN", "US"));
  const coordinate = (limit: number) => fc.oneof(fc.double({ min: -limit, max: limit, noNaN: true }), fc.double({ min: -limit, max: limit, noNaN: true }).map(String), junk);

  it("never throws on junk and always returns a judgeable country and a schema-valid location", () => {
    fc.assert(
      fc.property(fc.record({ country: junk, regionCode: junk, latitude: junk, longitude: junk }, { requiredKeys: [] }), (input) => {
        const out = locateClient(input);
        expect(out.country).toMatch(COUNTRY);
        if (out.location !== null) expect(ClientLocationSchema.safeParse(out.location).success).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("returns any valid country given, or the territory's", () => {
    fc.assert(
      fc.property(validCountry, fc.oneof(junk, fc.stringMatching(/^[A-Z0-9]{1,3}$/)), coordinate(90), coordinate(180), (country, regionCode, latitude, longitude) => {
        const out = locateClient({ country, regionCode, latitude, longitude });
        if (out.territory === undefined) expect(out.country).toBe(country);
        else {
          expect(out.country).toBe("UA");
          expect(out.subdivision).toMatch(/^UA-(43|40|14|09)$/);
        }
        if (out.location !== null) {
          expect(ClientLocationSchema.safeParse(out.location).success).toBe(true);
          expect(out.location.country).toBe(out.country);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("puts every point inside a territory's outline in that territory, whatever the country", () => {
    fc.assert(
      fc.property(validCountry, fc.double({ min: 44.3, max: 50.1, noNaN: true }), fc.double({ min: 32.4, max: 40.3, noNaN: true }), (country, lat, lon) => {
        const territory = territoryAt(lat, lon);
        const out = locateClient({ country, latitude: lat, longitude: lon });
        expect(out.territory).toBe(territory?.id);
        if (territory !== undefined) expect(out).toMatchObject({ country: "UA", subdivision: territory.properties.subdivision });
      }),
      { numRuns: 3000 },
    );
  });
});
