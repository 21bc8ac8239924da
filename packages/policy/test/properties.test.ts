import fc from "fast-check";
import { GPU_CLASSES, type PolicyDocument, type PolicyRule } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { FleetIndex, route } from "@meridian/routing";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../src";

const COUNTRIES = ["US", "JP", "CN", "DE", "IR", "UA", "FR", "BR", "XX"];
const regionIds = REGIONS.map((r) => r.id);

const matchArb = fc.record(
  {
    clientCountry: fc.uniqueArray(fc.constantFrom(...COUNTRIES), { minLength: 1, maxLength: 3 }),
    nodeRegion: fc.uniqueArray(fc.constantFrom(...regionIds), { minLength: 1, maxLength: 20 }),
    nodeKind: fc.uniqueArray(fc.constantFrom("gpu" as const, "hotspot" as const), { minLength: 1, maxLength: 2 }),
    gpuClass: fc.uniqueArray(fc.constantFrom(...GPU_CLASSES), { minLength: 1, maxLength: 4 }),
  },
  { requiredKeys: [] },
);

const documentArb: fc.Arbitrary<PolicyDocument> = fc
  .record({
    defaultEffect: fc.constantFrom("allow" as const, "deny" as const),
    rules: fc.array(fc.record({ effect: fc.constantFrom("allow" as const, "deny" as const), match: matchArb }), { maxLength: 8 }),
  })
  .map(({ defaultEffect, rules }) => ({
    name: "random",
    defaultEffect,
    groups: { countries: {}, subdivisions: {}, gpuClasses: {}, regions: {} },
    embargo: { countries: [], subdivisions: [] },
    rules: rules.map((r, i): PolicyRule => ({ id: `r${i}`, reason: "random", ...r })),
  }));

const nodeArb = fc.record({
  region: fc.constantFrom(...regionIds),
  kind: fc.constantFrom("gpu" as const, "hotspot" as const),
  gpuClass: fc.constantFrom(...GPU_CLASSES),
  load: fc.double({ min: 0, max: 1, noNaN: true }),
});

describe("policy properties", () => {
  it("the routed node is always allowed, every skipped-by-policy node has a deciding rule, and deny overrides allow", () => {
    fc.assert(
      fc.property(documentArb, fc.array(nodeArb, { minLength: 1, maxLength: 60 }), fc.constantFrom(...COUNTRIES), fc.double({ min: -60, max: 70, noNaN: true }), fc.double({ min: -180, max: 180, noNaN: true }), (doc, fleet, country, lat, lon) => {
        const policy = compilePolicy(doc, 1);
        const client = country === "XX" ? {} : { country };
        const judge = policy.forClient(client);
        const records = fleet.map((n, i) => ({
          id: `n${i}`, kind: n.kind, region: n.region, ...(n.kind === "gpu" ? { gpu: { class: n.gpuClass, vramGb: 80, count: 1 } } : {}),
          capacity: 4, endpoint: "http://x", health: "healthy" as const, healthReason: "", healthSince: 0, load: n.load, inFlight: 0, free: 4, connectedAt: 0, seq: 1,
        }));
        const decision = route(new FleetIndex(records), {
          client: { lat, lon },
          requirements: {},
          filter: (node) => {
            const verdict = judge({ region: node.region, kind: node.kind, ...(node.gpu ? { gpuClass: node.gpu.class } : {}) });
            return verdict.allowed ? null : (verdict.rules[0] ?? "unknown");
          },
        });
        for (const candidate of decision.candidates) {
          const n = candidate.node;
          expect(judge({ region: n.region, kind: n.kind, ...(n.gpu ? { gpuClass: n.gpu.class } : {}) }).allowed).toBe(true);
        }
        for (const n of records) {
          const verdict = judge({ region: n.region, kind: n.kind, ...(n.gpu ? { gpuClass: n.gpu.class } : {}) });
          expect(verdict.rules.length).toBeGreaterThan(0);
          // Deny overrides allow: if any deny rule matches by brute force, the verdict is deny.
          const anyDeny = doc.rules.some(
            (r) =>
              r.effect === "deny" &&
              (r.match.clientCountry === undefined || r.match.clientCountry.includes(country)) &&
              (r.match.nodeRegion === undefined || r.match.nodeRegion.includes(n.region)) &&
              (r.match.nodeKind === undefined || r.match.nodeKind.includes(n.kind)) &&
              (r.match.gpuClass === undefined || (n.gpu !== undefined && (r.match.gpuClass as string[]).includes(n.gpu.class))),
          );
          if (anyDeny) expect(verdict.allowed).toBe(false);
          if (!verdict.allowed) expect(verdict.rules.every((id) => id === "default-deny" || doc.rules.some((r) => r.id === id && r.effect === "deny"))).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
