import { PolicyDocumentSchema, type PolicyDocument } from "@meridian/protocol";
import { REGIONS, regionIndex } from "@meridian/regions";
import { describe, expect, it } from "vitest";
import baselineJson from "../../../infra/policies/baseline.json";
import { compilePolicy, tenantImpact } from "../src";
import { SLOT_COUNT, slotOf } from "@meridian/protocol";

const baseline: PolicyDocument = PolicyDocumentSchema.parse(baselineJson);
const policy = compilePolicy(baseline, 7);
const h100 = (region: string) => ({ region, kind: "gpu" as const, gpuClass: "h100" as const });
const hotspot = (region: string) => ({ region, kind: "hotspot" as const });

describe("judging a tenant under several contexts (forAll)", () => {
  it("refuses when any context refuses: a subsidiary is judged by its parent's headquarters too", () => {
    const subsidiary = policy.forAll([{ country: "SG", tenantHq: "SG" }, { country: "SG", tenantHq: "CN" }]);
    expect(subsidiary(h100("sin"))).toEqual({ allowed: false, rules: ["advanced-gpu-d5-hq"] });
    expect(subsidiary(hotspot("sin")).allowed).toBe(true);
    expect(policy.forAll([{ country: "SG", tenantHq: "SG" }])(h100("sin")).allowed).toBe(true);
  });

  it("lets a request's residency narrow the tenant's, never widen it", () => {
    const eu = policy.forAll([{ country: "GB", residency: "eu" }, { country: "GB" }]);
    expect(eu(hotspot("lhr")).allowed).toBe(false);
    expect(eu(hotspot("fra")).allowed).toBe(true);
  });

  it("answers the hot path's allows(region, slot) exactly as the judge does", () => {
    const judge = policy.forAll([{ country: "SG", tenantHq: "SG" }, { country: "SG", tenantHq: "CN", residency: "eu" }]);
    for (const region of REGIONS) {
      for (const node of [h100(region.id), hotspot(region.id)]) {
        const slot = slotOf(node.kind, "gpuClass" in node ? node.gpuClass : undefined);
        expect(slot).toBeLessThan(SLOT_COUNT);
        expect(judge.allows(regionIndex(region.id), slot), `${region.id} ${node.kind}`).toBe(judge(node).allowed);
      }
    }
    expect(policy.forAll([{ country: "SG", tenantHq: "SG" }, { country: "SG", tenantHq: "CN", residency: "eu" }])).toBe(judge);
  });
});

describe("dry-run impact by tenant headquarters", () => {
  it("reports which node classes tenants headquartered in a country gain or lose", () => {
    const relaxed = compilePolicy({ ...baseline, rules: baseline.rules.filter((r) => r.id !== "advanced-gpu-d5-hq") }, 8);
    const changes = tenantImpact(policy, relaxed, new Map([["CN", 2], ["SG", 5]]));
    expect(changes).toContainEqual({ hqCountry: "CN", tenants: 2, nodeClass: "h100", before: false, after: true });
    expect(changes.some((c) => c.hqCountry === "SG")).toBe(false);
    expect(tenantImpact(policy, policy, new Map([["CN", 1]]))).toEqual([]);
  });
});
