import { GPU_CLASSES, PolicyDocumentSchema, locateClient, type CfLocationInput, type PolicyDocument } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { describe, expect, it } from "vitest";
import baselineJson from "../../../infra/policies/baseline.json";
import { compilePolicy, validatePolicy, type NodeContext } from "../src";

const baseline: PolicyDocument = PolicyDocumentSchema.parse(baselineJson);
const policy = compilePolicy(baseline, 1);

/** How the gateway judges a request: by the located country and subdivision, never by the ranking point. */
function judge(cf: CfLocationInput) {
  const located = locateClient(cf);
  return policy.forClient({ country: located.country, ...(located.subdivision ? { subdivision: located.subdivision } : {}) });
}

const everyNode: NodeContext[] = REGIONS.flatMap((r) => [
  { region: r.id, kind: "hotspot" as const },
  { region: r.id, kind: "carrier" as const },
  ...GPU_CLASSES.map((gpuClass) => ({ region: r.id, kind: "gpu" as const, gpuClass })),
]);
const allowedNodes = (cf: CfLocationInput) => {
  const j = judge(cf);
  return everyNode.filter((n) => j(n).allowed);
};

describe("baseline judged on located clients", () => {
  it("denies everything to an embargoed country that comes without coordinates", () => {
    expect(allowedNodes({ country: "IR" })).toEqual([]);
    expect(judge({ country: "CU" })({ region: "fra", kind: "hotspot" }).rules).toEqual(["embargo-clients"]);
  });

  it("keeps controlled GPUs from a D:5 country that comes without coordinates", () => {
    expect(judge({ country: "CN" })({ region: "sin", kind: "gpu", gpuClass: "h100" }).rules).toEqual(["advanced-gpu-d5"]);
    expect(judge({ country: "CN" })({ region: "sin", kind: "gpu", gpuClass: "rtx4090d" }).allowed).toBe(true);
  });

  it("denies everything to Sevastopol's coordinates reported as RU, naming the territory rule", () => {
    expect(allowedNodes({ country: "RU", latitude: "44.6166", longitude: "33.5254" })).toEqual([]);
    expect(judge({ country: "RU", latitude: "44.6166", longitude: "33.5254" })({ region: "fra", kind: "hotspot" }).rules).toEqual(["embargo-client-regions"]);
  });

  it("denies everything to Crimea, Donetsk and Luhansk by coordinates or by geo-IP code", () => {
    for (const cf of [
      { country: "RU", latitude: 44.9521, longitude: 34.1024 },
      { country: "RU", latitude: 47.0971, longitude: 37.5434 },
      { country: "RU", latitude: 48.574, longitude: 39.3078 },
      { country: "RU", regionCode: "CR" },
      { country: "UA", regionCode: "43" },
      { country: "UA", regionCode: "40" },
      { country: "UA", regionCode: "14" },
      { country: "UA", regionCode: "09" },
    ]) {
      expect(allowedNodes(cf), JSON.stringify(cf)).toEqual([]);
    }
  });

  it("serves the rest of Ukraine", () => {
    expect(judge({ country: "UA", regionCode: "30", latitude: 50.45, longitude: 30.52 })({ region: "waw", kind: "gpu", gpuClass: "h100" }).allowed).toBe(true);
  });

  it("keeps controlled GPUs (incl. H20) from Tor and unknown clients but serves them uncontrolled classes and hotspots", () => {
    for (const country of ["T1", "XX", undefined, "not-a-country"]) {
      const j = judge({ country });
      expect(j({ region: "fra", kind: "gpu", gpuClass: "h100" }).rules).toEqual(["advanced-gpu-unknown-client"]);
      expect(j({ region: "fra", kind: "gpu", gpuClass: "h20" }).allowed).toBe(false);
      expect(j({ region: "fra", kind: "gpu", gpuClass: "rtx4080" }).allowed).toBe(true);
      expect(j({ region: "fra", kind: "hotspot" }).allowed).toBe(true);
    }
  });

  it("accepts T1 and XX as country literals in rules", () => {
    const doc = { ...baselineJson, rules: [...baselineJson.rules, { id: "tor-no-hotspot", effect: "deny", reason: "No hotspot traffic over Tor", match: { clientCountry: ["T1", "XX"], nodeKind: ["hotspot"] } }] };
    expect(validatePolicy(doc)).toMatchObject({ ok: true, violations: [] });
  });

  it("refuses control characters in a rule reason with the rule's path", () => {
    const doc = { ...baselineJson, rules: baselineJson.rules.map((r, i) => (i === 2 ? { ...r, reason: "sanctions\u001b[2J" } : r)) };
    const result = validatePolicy(doc);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toContainEqual({ code: "schema", path: "rules.2.reason", message: expect.stringContaining("control characters") });
  });
});
