import { PolicyDocumentSchema, type PolicyDocument } from "@meridian/protocol";
import { describe, expect, it } from "vitest";
import baselineJson from "../../../infra/policies/baseline.json";
import { compilePolicy, diffPolicies, fleetImpact, impactMatrix, validatePolicy } from "../src";

const baseline: PolicyDocument = PolicyDocumentSchema.parse(baselineJson);
const policy = compilePolicy(baseline, 1);
const h100 = (region: string) => ({ region, kind: "gpu" as const, gpuClass: "h100" as const });
const hotspot = (region: string) => ({ region, kind: "hotspot" as const });

describe("baseline policy", () => {
  it("validates with no violations", () => {
    const result = validatePolicy(baselineJson);
    expect(result).toMatchObject({ ok: true, violations: [] });
  });

  it("denies every node to embargoed clients and names the rule", () => {
    expect(policy.evaluate({ country: "IR" }, hotspot("fra"))).toEqual({ allowed: false, rules: ["embargo-clients"] });
    expect(policy.evaluate({ country: "KP" }, h100("nrt")).allowed).toBe(false);
  });

  it("denies Crimea and Donetsk while serving the rest of Ukraine", () => {
    expect(policy.evaluate({ country: "UA", subdivision: "UA-43" }, hotspot("waw"))).toEqual({ allowed: false, rules: ["embargo-client-regions"] });
    expect(policy.evaluate({ country: "UA", subdivision: "UA-14" }, hotspot("waw")).allowed).toBe(false);
    expect(policy.evaluate({ country: "UA", subdivision: "UA-30" }, h100("waw")).allowed).toBe(true);
  });

  it("never routes to nodes in embargoed places", () => {
    expect(policy.evaluate({ country: "US" }, hotspot("ika")).rules).toEqual(["embargo-nodes"]);
    expect(policy.evaluate({ country: "US" }, hotspot("sip")).rules).toEqual(["embargo-node-regions"]);
  });

  it("keeps controlled GPUs from D:5, Macau and Hong Kong clients, and from D:5 tenants, but not uncontrolled ones", () => {
    for (const country of ["CN", "HK", "MO", "RU", "VE"]) expect(policy.evaluate({ country }, h100("sin")).rules).toEqual(["advanced-gpu-d5"]);
    expect(policy.evaluate({ country: "CN" }, { region: "sin", kind: "gpu", gpuClass: "h20" }).allowed).toBe(false);
    expect(policy.evaluate({ country: "CN" }, { region: "sin", kind: "gpu", gpuClass: "rtx4090d" }).allowed).toBe(true);
    expect(policy.evaluate({ country: "SG", tenantHq: "CN" }, h100("sin")).rules).toEqual(["advanced-gpu-d5-hq"]);
    expect(policy.evaluate({ country: "JP" }, h100("nrt")).allowed).toBe(true);
  });

  it("fails closed for controlled GPUs when the client's country is unknown or Tor", () => {
    expect(policy.evaluate({}, h100("fra")).rules).toEqual(["advanced-gpu-unknown-client"]);
    expect(policy.evaluate({ country: "T1" }, h100("fra")).allowed).toBe(false);
    expect(policy.evaluate({}, hotspot("fra")).allowed).toBe(true);
  });

  it("keeps eu-residency traffic on EU/EEA nodes", () => {
    expect(policy.evaluate({ country: "PT", residency: "eu" }, hotspot("lhr")).rules).toEqual(["residency-eu"]);
    expect(policy.evaluate({ country: "PT", residency: "eu" }, hotspot("mad")).allowed).toBe(true);
    expect(policy.evaluate({ country: "PT", residency: "eu" }, hotspot("osl")).allowed).toBe(true);
  });
});

describe("validation", () => {
  it("lists schema errors with paths", () => {
    const result = validatePolicy({ ...baselineJson, defaultEffect: "maybe", rules: [{ id: "BAD ID", effect: "deny", reason: "", match: {} }] });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path)).toEqual(expect.arrayContaining(["defaultEffect", "rules.0.id", "rules.0.reason"]));
  });

  it("refuses unknown groups and duplicate rule ids as hard errors", () => {
    const rules = [...baseline.rules, { id: "x", effect: "deny", reason: "r", match: { clientCountry: ["@nope"] } }, { id: "x", effect: "deny", reason: "r", match: { gpuClass: ["@embargoed"] } }];
    const result = validatePolicy({ ...baseline, rules });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.code).sort()).toEqual(["duplicate-rule-id", "unknown-group", "unknown-group"]);
  });

  it("flags an opened embargo and meaningless rules as violations", () => {
    const rules = baseline.rules.filter((r) => r.id !== "embargo-clients" && r.id !== "embargo-nodes");
    rules.push({ id: "allow-jp", effect: "allow", reason: "pointless under default allow", match: { clientCountry: ["JP"] } });
    rules.push({ id: "deny-nothing", effect: "deny", reason: "unsatisfiable", match: { clientCountry: ["JP"], clientSubdivision: ["UA-43"] } });
    const result = validatePolicy({ ...baseline, rules });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const codes = result.violations.map((v) => `${v.code}:${v.rule ?? ""}`);
    expect(codes).toContain("meaningless-rule:allow-jp");
    expect(codes).toContain("meaningless-rule:deny-nothing");
    expect(result.violations.filter((v) => v.code === "embargo-open").map((v) => v.message).join("\n")).toMatch(/embargoed IR/);
  });
});

describe("diff and impact", () => {
  const draft: PolicyDocument = { ...baseline, rules: [...baseline.rules, { id: "deny-nrt", effect: "deny", reason: "maintenance", match: { nodeRegion: ["nrt"] } }] };
  draft.groups = { ...baseline.groups, countries: { ...baseline.groups.countries, embargoed: { ...baseline.groups.countries.embargoed!, members: ["CU", "IR", "KP", "SY"] } } };

  it("diffs rules and group members", () => {
    const diff = diffPolicies(baseline, draft);
    expect(diff.rules).toEqual([{ id: "deny-nrt", change: "added" }]);
    expect(diff.groups).toEqual([{ kind: "countries", name: "embargoed", change: "changed", added: ["SY"], removed: [] }]);
    expect(diff.summary).toContain("added rule deny-nrt");
  });

  it("reports which client countries lose which node classes", () => {
    const { changes } = impactMatrix(policy, compilePolicy(draft, 2));
    expect(changes).toContainEqual({ client: "SY", nodeClass: "hotspot", before: true, after: false });
    expect(changes.some((c) => c.client === "JP")).toBe(false);
  });

  it("counts connected nodes gained or lost per client country", () => {
    const nodes = [hotspot("nrt"), hotspot("fra"), h100("nrt")];
    const rows = fleetImpact(policy, compilePolicy(draft, 2), nodes);
    expect(rows).toContainEqual({ client: "JP", before: 3, after: 1, delta: -2 });
  });
});
