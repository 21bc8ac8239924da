import { ClientLocationSchema } from "@meridian/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clientLocation } from "../src/client";

describe("clientLocation", () => {
  it("accepts and rejects exactly what ClientLocationSchema does", () => {
    const number = fc.oneof(fc.double({ min: -200, max: 200, noNaN: true }).map(String), fc.constantFrom("", "  ", "abc", "1e2", "-90", "90.0001", " 12 ", "0x10"));
    const country = fc.option(fc.oneof(fc.constantFrom("JP", "T1", "XX", "jp", "J", "JPN", ""), fc.string({ maxLength: 3 })), { nil: undefined });
    const subdivision = fc.option(fc.oneof(fc.constantFrom("UA-43", "US-CA", "UA43", "GB-ENG1", ""), fc.string({ maxLength: 7 })), { nil: undefined });
    fc.assert(
      fc.property(number, number, country, subdivision, (lat, lon, c, s) => {
        const fast = clientLocation(lat, lon, c, s);
        const schema = ClientLocationSchema.safeParse({ lat, lon, ...(c ? { country: c } : {}), ...(s ? { subdivision: s } : {}) });
        expect(typeof fast !== "string", JSON.stringify({ lat, lon, c, s, fast })).toBe(schema.success && lat.trim() !== "" && lon.trim() !== "");
        if (typeof fast !== "string" && schema.success) expect(fast).toEqual(schema.data);
      }),
      { numRuns: 2000 },
    );
  });
});
