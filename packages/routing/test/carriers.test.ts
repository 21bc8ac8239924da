import { describe, expect, it } from "vitest";
import { diffCarriers, validateCarriers } from "../src";

const partner = (id: string, offload: Record<string, unknown> = {}, regions = ["lhr", "man"]) => ({
  id,
  name: `Carrier ${id}`,
  regions,
  offload: { maxHotspotKm: 50, minTier: 2, congestionThreshold: 0.7, hysteresis: 0.2, dial: { base: 100, max: 100 }, ...offload },
});

describe("validateCarriers", () => {
  it("accepts a well-formed document with no violations", () => {
    const checked = validateCarriers({ partners: [partner("tmo"), partner("vod")] });
    expect(checked.ok).toBe(true);
    if (checked.ok) {
      expect(checked.violations).toEqual([]);
      expect(checked.document.partners.map((p) => p.id)).toEqual(["tmo", "vod"]);
    }
  });

  it("refuses repeated partner ids, repeated regions and a dial base above its max, with paths", () => {
    const checked = validateCarriers({ partners: [partner("tmo"), partner("tmo", { dial: { base: 80, max: 20 } }, ["lhr", "lhr"])] });
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(checked.errors.every((e) => e.code === "schema")).toBe(true);
      const paths = checked.errors.map((e) => e.path);
      expect(paths).toContain("partners.1.regions");
      expect(paths.some((p) => p?.startsWith("partners.1.offload.dial"))).toBe(true);
    }
  });
});

describe("diffCarriers", () => {
  it("names added, removed and changed partners with the fields that changed", () => {
    const before = { partners: [partner("tmo"), partner("old")] };
    const after = { partners: [partner("tmo", { minTier: 4 }, ["lhr"]), partner("new")] };
    expect(diffCarriers(before, after)).toBe("added new; removed old; changed tmo (regions, offload.minTier)");
    expect(diffCarriers(null, { partners: [partner("tmo")] })).toBe("added tmo");
    expect(diffCarriers(after, after)).toBe("no change");
  });
});
