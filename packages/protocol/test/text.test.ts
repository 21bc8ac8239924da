import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import baseline from "../../../infra/policies/baseline.json";
import { CarrierDocumentSchema, DrainSchema, HelloSchema, PolicyDocumentSchema, firstIssue, formatIssues, isSafeText, issuesText, safeText } from "../src/index";

const UNSAFE = [
  ["NUL", "\u0000"],
  ["BEL", "\u0007"],
  ["TAB", "\t"],
  ["LF", "\n"],
  ["CR", "\r"],
  ["CRLF", "\r\n"],
  ["ESC", "\u001b[31m"],
  ["DEL", "\u007f"],
  ["C1 NEL", "\u0085"],
  ["C1 CSI", "\u009b"],
  ["LRE", "\u202a"],
  ["RLE", "\u202b"],
  ["PDF", "\u202c"],
  ["LRO", "\u202d"],
  ["RLO", "\u202e"],
  ["LRI", "\u2066"],
  ["RLI", "\u2067"],
  ["FSI", "\u2068"],
  ["PDI", "\u2069"],
  ["lone high surrogate", "\ud800"],
  ["lone low surrogate", "\udc00"],
  ["reversed pair", "\udc00\ud800"],
] as const;

/** Independent oracle: walk code points by hand. */
function oracle(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return false;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

describe("isSafeText", () => {
  it.each(UNSAFE)("refuses %s", (_name, bad) => {
    expect(isSafeText(bad)).toBe(false);
    expect(isSafeText(`deny nrt ${bad} during audit`)).toBe(false);
  });

  it("accepts ordinary text in any script, emoji and typographic punctuation", () => {
    for (const good of ["", "deny nrt during audit", "Crimea — Sevastopol (UA-40)", "Zürich, Kraków, Київ", "北京", "مرحبا", "🚀 GPU", "a\u00a0b", "x\u200dy"]) {
      expect(isSafeText(good), good).toBe(true);
    }
  });

  it("agrees with a code-point walk on any string", () => {
    const unit = fc.oneof(fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), fc.constantFrom(...UNSAFE.map(([, s]) => s)), fc.string());
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 12 }), (parts) => {
        const s = parts.join("");
        expect(isSafeText(s)).toBe(oracle(s));
      }),
      { numRuns: 5000 },
    );
  });

  it("is a zod helper that keeps the base schema's bounds", () => {
    const schema = safeText(z.string().min(1).max(5));
    expect(schema.safeParse("ok").success).toBe(true);
    expect(schema.safeParse("").success).toBe(false);
    expect(schema.safeParse("toolong").success).toBe(false);
    expect(schema.safeParse("a\u001bb").success).toBe(false);
    expect(safeText().safeParse("a\nb").success).toBe(false);
  });
});

describe("free text in documents and frames", () => {
  const rulesOf = (reason: string) => ({ ...baseline, rules: baseline.rules.map((r, i) => (i === 0 ? { ...r, reason } : r)) });

  it("the baseline is safe text and parses", () => {
    expect(PolicyDocumentSchema.safeParse(baseline).success).toBe(true);
  });

  it.each(UNSAFE)("policy reasons, names, descriptions, sources and notes refuse %s", (_name, bad) => {
    const cases: [unknown, string][] = [
      [rulesOf(`sanctions ${bad}`), "rules.0.reason"],
      [{ ...baseline, name: `x${bad}` }, "name"],
      [{ ...baseline, description: `x${bad}` }, "description"],
      [{ ...baseline, groups: { ...baseline.groups, countries: { ...baseline.groups.countries, embargoed: { ...baseline.groups.countries.embargoed, source: `OFAC${bad}` } } } }, "groups.countries.embargoed.source"],
      [{ ...baseline, groups: { ...baseline.groups, countries: { ...baseline.groups.countries, embargoed: { ...baseline.groups.countries.embargoed, note: `n${bad}` } } } }, "groups.countries.embargoed.note"],
      [{ ...baseline, groups: { ...baseline.groups, regions: { maint: { members: ["nrt"], note: `n${bad}` } } } }, "groups.regions.maint.note"],
    ];
    for (const [doc, path] of cases) {
      const parsed = PolicyDocumentSchema.safeParse(doc);
      expect(parsed.success, path).toBe(false);
      if (!parsed.success) expect(formatIssues(parsed.error).map((i) => i.path)).toContain(path);
    }
  });

  it("carrier names, node hello agents and drain reasons refuse control characters", () => {
    const offload = { maxHotspotKm: 50, minTier: 2, congestionThreshold: 0.7, hysteresis: 0.1, dial: { base: 10, max: 50 } };
    expect(CarrierDocumentSchema.safeParse({ partners: [{ id: "tmo-us", name: "T-Mobile US", regions: ["iad"], offload }] }).success).toBe(true);
    expect(CarrierDocumentSchema.safeParse({ partners: [{ id: "tmo-us", name: "T-Mobile\u202eSU", regions: ["iad"], offload }] }).success).toBe(false);
    const hello = { type: "hello", protocol: 1, node: "gpu-fra-01", kind: "hotspot", capacity: 4, endpoint: "http://127.0.0.1:9000" };
    expect(HelloSchema.safeParse({ ...hello, agent: "meridian-node/1" }).success).toBe(true);
    expect(HelloSchema.safeParse({ ...hello, agent: "meridian\u001b[2J" }).success).toBe(false);
    expect(HelloSchema.safeParse({ ...hello, node: "gpu\nfra" }).success).toBe(false);
    expect(DrainSchema.safeParse({ type: "drain", reason: "maintenance" }).success).toBe(true);
    expect(DrainSchema.safeParse({ type: "drain", reason: "bye\r\nx-injected: 1" }).success).toBe(false);
  });
});

describe("zod issue formatting", () => {
  const schema = z.strictObject({ a: z.object({ b: z.array(z.int()) }), c: z.string() });
  const error = (value: unknown) => {
    const parsed = schema.safeParse(value);
    if (parsed.success) throw new Error("expected a failure");
    return parsed.error;
  };

  it("lists every issue with a dotted path", () => {
    expect(formatIssues(error({ a: { b: [1, "x"] }, c: 3 }))).toEqual([
      { path: "a.b.1", message: expect.any(String) },
      { path: "c", message: expect.any(String) },
    ]);
  });

  it("gives the first issue as path: message, naming the root when the path is empty", () => {
    expect(firstIssue(error({ a: { b: ["x"] }, c: "" }))).toMatch(/^a\.b\.0: .+/);
    expect(firstIssue(error(5))).toMatch(/^value: .+/);
    expect(firstIssue(error(5), "body")).toMatch(/^body: .+/);
    expect(issuesText(error({ a: { b: [1, "x"] }, c: 3 }), "body")).toMatch(/^a\.b\.1: .+; c: .+$/);
  });
});
