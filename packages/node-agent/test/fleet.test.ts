import { describe, expect, it } from "vitest";
import { NodeIdSchema } from "@meridian/protocol";
import { REGIONS, isRegionId } from "@meridian/regions";
import {
  GPU_CAPACITY_RANGE,
  HOTSPOT_CAPACITY_RANGE,
  SIMULATED_GPU_MIX,
  SIMULATED_GPU_SHARE,
  planFleet,
} from "../src/fleet";

describe("planFleet", () => {
  it("puts a node in every region as soon as there are as many nodes as regions", () => {
    const fleet = planFleet({ nodes: REGIONS.length, seed: 1, prefix: "sim" });
    expect(new Set(fleet.map((n) => n.region))).toEqual(new Set(REGIONS.map((r) => r.id)));

    const twice = planFleet({ nodes: 2 * REGIONS.length, seed: 9, prefix: "sim" });
    const perRegion = new Map<string, number>();
    for (const node of twice) perRegion.set(node.region, (perRegion.get(node.region) ?? 0) + 1);
    expect([...perRegion.values()].every((count) => count === 2)).toBe(true);
    expect(perRegion.size).toBe(REGIONS.length);
  });

  it("is deterministic per seed and differs between seeds", () => {
    const a = planFleet({ nodes: 300, seed: 42, prefix: "sim" });
    const b = planFleet({ nodes: 300, seed: 42, prefix: "sim" });
    const c = planFleet({ nodes: 300, seed: 43, prefix: "sim" });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(planFleet({ nodes: 0, seed: 1, prefix: "sim" })).toEqual([]);
  });

  it("gives ids that are unique, valid node ids and spell prefix-region-class-n", () => {
    const fleet = planFleet({ nodes: 1_000, seed: 3, prefix: "load-test" });
    expect(new Set(fleet.map((n) => n.id)).size).toBe(fleet.length);
    for (const node of fleet) {
      expect(NodeIdSchema.safeParse(node.id).success).toBe(true);
      expect(isRegionId(node.region)).toBe(true);
      const label = node.gpu ? node.gpu.class : "hotspot";
      expect(node.id).toMatch(new RegExp(`^load-test-${node.region}-${label}-\\d+$`));
    }
  });

  it("draws roughly 60 % gpu with the configured hardware mix and capacity ranges", () => {
    const fleet = planFleet({ nodes: 6_000, seed: 7, prefix: "sim" });
    const gpuNodes = fleet.filter((n) => n.kind === "gpu");
    expect(gpuNodes.length / fleet.length).toBeGreaterThan(SIMULATED_GPU_SHARE - 0.03);
    expect(gpuNodes.length / fleet.length).toBeLessThan(SIMULATED_GPU_SHARE + 0.03);

    const totalWeight = SIMULATED_GPU_MIX.reduce((sum, e) => sum + e.weight, 0);
    for (const { weight, gpu } of SIMULATED_GPU_MIX) {
      const share = gpuNodes.filter((n) => n.gpu?.class === gpu.class).length / gpuNodes.length;
      expect(Math.abs(share - weight / totalWeight), gpu.class).toBeLessThan(0.03);
    }
    for (const node of fleet) {
      if (node.kind === "gpu") {
        expect(node.gpu).toBeDefined();
        expect(node.capacity).toBeGreaterThanOrEqual(GPU_CAPACITY_RANGE.min);
        expect(node.capacity).toBeLessThanOrEqual(GPU_CAPACITY_RANGE.max);
      } else {
        expect(node.gpu).toBeUndefined();
        expect(node.capacity).toBeGreaterThanOrEqual(HOTSPOT_CAPACITY_RANGE.min);
        expect(node.capacity).toBeLessThanOrEqual(HOTSPOT_CAPACITY_RANGE.max);
      }
    }
    const h100 = gpuNodes.find((n) => n.gpu?.class === "h100");
    expect(h100?.gpu).toEqual({ class: "h100", vramGb: 80, count: 8 });
    const rtx = gpuNodes.find((n) => n.gpu?.class === "rtx4090");
    expect(rtx?.gpu).toEqual({ class: "rtx4090", vramGb: 24, count: 1 });
  });

  it("rejects a prefix that makes invalid node ids", () => {
    expect(() => planFleet({ nodes: 1, seed: 1, prefix: "x".repeat(60) })).toThrow(/invalid node id/);
    expect(() => planFleet({ nodes: 1, seed: 1, prefix: "Sim" })).toThrow(/invalid node id/);
  });
});
