import { GPU_CLASSES, type NodeRecord, type Requirements } from "@meridian/protocol";
import { REGIONS, estimateRttMs, getRegion, greatCircleKm } from "@meridian/regions";
import { describe, expect, it } from "vitest";
import { FleetIndex, LOAD_PENALTY_MS, explainExclusions, route, slotOf } from "../src";
import { gpuNode, hotspot, node, rng } from "./fixtures";

const TOKYO = { lat: 35.6762, lon: 139.6503 };
const ids = (nodes: { node: NodeRecord }[]) => nodes.map((c) => c.node.id);

/** The obvious O(n log n) answer, for comparison with the pruned walk. */
function bruteForce(nodes: NodeRecord[], client: { lat: number; lon: number }, req: Requirements, want: number): string[] {
  const wantKind = req.kind ?? (req.gpuClass || req.minVramGb ? "gpu" : undefined);
  return nodes
    .filter((n) => n.health === "healthy" && n.free > 0)
    .filter((n) => wantKind === undefined || n.kind === wantKind)
    .filter((n) => req.gpuClass === undefined || n.gpu?.class === req.gpuClass)
    .filter((n) => req.minVramGb === undefined || (n.gpu?.vramGb ?? 0) >= req.minVramGb)
    .map((n) => {
      const region = getRegion(n.region);
      if (!region) throw new Error(`fixture region ${n.region}`);
      return { id: n.id, score: estimateRttMs(greatCircleKm(client.lat, client.lon, region.lat, region.lon)) + n.load * LOAD_PENALTY_MS };
    })
    .sort((a, b) => a.score - b.score || (a.id < b.id ? -1 : 1))
    .slice(0, want)
    .map((x) => x.id);
}

describe("route", () => {
  it("sends a Tokyo client to the Tokyo node, with farther fallbacks in order", () => {
    const index = new FleetIndex([node("fra-1", "fra"), node("nrt-1", "nrt"), node("sin-1", "sin"), node("icn-1", "icn")]);
    const decision = route(index, { client: TOKYO, requirements: {} });
    expect(ids(decision.candidates)).toEqual(["nrt-1", "icn-1", "sin-1"]);
  });

  it("never sends a B200 request to an RTX 4090 node, however close", () => {
    const index = new FleetIndex([gpuNode("nrt-4090", "nrt", "rtx4090", 24), gpuNode("fra-b200", "fra", "b200", 192)]);
    const decision = route(index, { client: TOKYO, requirements: { gpuClass: "b200" } });
    expect(ids(decision.candidates)).toEqual(["fra-b200"]);
  });

  it("filters by kind and minimum VRAM, and implies gpu when VRAM is asked for", () => {
    const index = new FleetIndex([hotspot("nrt-hs", "nrt"), gpuNode("nrt-24", "nrt", "rtx4090", 24), gpuNode("icn-80", "icn", "h100", 80)]);
    expect(ids(route(index, { client: TOKYO, requirements: { kind: "hotspot" } }).candidates)).toEqual(["nrt-hs"]);
    expect(ids(route(index, { client: TOKYO, requirements: { minVramGb: 48 } }).candidates)).toEqual(["icn-80"]);
  });

  it("skips unhealthy, draining and full nodes", () => {
    const index = new FleetIndex([
      node("nrt-down", "nrt", { health: "down" }),
      node("nrt-drain", "nrt", { health: "draining" }),
      node("nrt-full", "nrt", { free: 0 }),
      node("icn-ok", "icn"),
    ]);
    expect(ids(route(index, { client: TOKYO, requirements: {} }).candidates)).toEqual(["icn-ok"]);
  });

  it("keeps suspect nodes as a last choice", () => {
    const index = new FleetIndex([node("nrt-suspect", "nrt", { health: "suspect" }), node("icn-ok", "icn")]);
    expect(ids(route(index, { client: TOKYO, requirements: {} }).candidates)).toEqual(["icn-ok", "nrt-suspect"]);
  });

  it("lets load break near-ties within a region and ids break exact ties", () => {
    const index = new FleetIndex([node("nrt-b", "nrt", { load: 0.5 }), node("nrt-c", "nrt"), node("nrt-a", "nrt")]);
    expect(ids(route(index, { client: TOKYO, requirements: {} }).candidates)).toEqual(["nrt-a", "nrt-c", "nrt-b"]);
  });

  it("applies the extra filter (the policy hook) before ranking", () => {
    const index = new FleetIndex([node("nrt-1", "nrt"), node("icn-1", "icn")]);
    const decision = route(index, { client: TOKYO, requirements: {}, filter: (n) => (n.region === "nrt" ? "deny-jp" : null) });
    expect(ids(decision.candidates)).toEqual(["icn-1"]);
  });

  it("ranks by load alone when the client's location is unknown", () => {
    const index = new FleetIndex([node("nrt-1", "nrt", { load: 0.9 }), node("gru-1", "gru", { load: 0.1 }), node("fra-1", "fra", { load: 0.5 })]);
    expect(ids(route(index, { client: null, requirements: {} }).candidates)).toEqual(["gru-1", "fra-1", "nrt-1"]);
  });

  it("answers no candidates when nothing qualifies", () => {
    expect(route(new FleetIndex([]), { client: TOKYO, requirements: {} }).candidates).toEqual([]);
  });

  it("matches a brute-force ranking on random fleets, examining only part of a large one", () => {
    const random = rng(42);
    const pick = <T>(xs: readonly T[]): T => {
      const x = xs[Math.floor(random() * xs.length)];
      if (x === undefined) throw new Error("empty");
      return x;
    };
    for (let round = 0; round < 30; round++) {
      const nodes: NodeRecord[] = [];
      const size = 50 + Math.floor(random() * 3000);
      for (let i = 0; i < size; i++) {
        const region = pick(REGIONS).id;
        const over: Partial<NodeRecord> = {
          load: Math.round(random() * 100) / 100,
          free: random() < 0.1 ? 0 : 4,
          health: random() < 0.1 ? "down" : "healthy",
        };
        nodes.push(random() < 0.3 ? hotspot(`n${i}`, region, over) : gpuNode(`n${i}`, region, pick(GPU_CLASSES), pick([24, 48, 80, 141, 192]), over));
      }
      const client = { lat: random() * 140 - 70, lon: random() * 360 - 180 };
      const requirements: Requirements = pick([{}, { kind: "hotspot" }, { gpuClass: "h100" }, { minVramGb: 100 }, { kind: "gpu" }]);
      const decision = route(new FleetIndex(nodes), { client, requirements, fallbacks: 3 });
      expect(ids(decision.candidates)).toEqual(bruteForce(nodes, client, requirements, 4));
      if (size > 2000 && Object.keys(requirements).length === 0) expect(decision.examined).toBeLessThan(size);
    }
  });
});

describe("route with a per-(region, slot) policy", () => {
  it("gives the same answer as the equivalent per-node filter, refusing most of the fleet or little of it", () => {
    const random = rng(7);
    const regionIds = REGIONS.map((r) => r.id);
    let examinedViaFilter = 0;
    let examinedViaSlots = 0;
    for (let round = 0; round < 40; round++) {
      const nodes: NodeRecord[] = [];
      for (let i = 0; i < 2000; i++) {
        const region = regionIds[Math.floor(random() * regionIds.length)] ?? "nrt";
        const gpuClass = GPU_CLASSES[Math.floor(random() * GPU_CLASSES.length)] ?? "h100";
        nodes.push(random() < 0.3 ? hotspot(`n${i}`, region, { load: random() }) : gpuNode(`n${i}`, region, gpuClass, 80, { load: random() }));
      }
      const refusedShare = round % 2 === 0 ? 0.95 : 0.1;
      const verdicts = new Map<string, boolean>();
      const allowedFor = (region: number, slot: number) => {
        const key = `${region}/${slot}`;
        if (!verdicts.has(key)) verdicts.set(key, random() >= refusedShare);
        return verdicts.get(key) === true;
      };
      const index = new FleetIndex(nodes);
      const client = { lat: random() * 140 - 70, lon: random() * 360 - 180 };
      // Settle every verdict first so both runs see the same ones.
      REGIONS.forEach((_, r) => { for (let slot = 0; slot < 20; slot++) allowedFor(r, slot); });
      const regionOf = new Map(REGIONS.map((r, i) => [r.id, i]));
      const viaFilter = route(index, { client, requirements: {}, filter: (n) => (allowedFor(regionOf.get(n.region) ?? -1, slotOf(n.kind, n.gpu?.class)) ? null : "refused") });
      const viaSlots = route(index, { client, requirements: {}, allowed: allowedFor });
      expect(ids(viaSlots.candidates)).toEqual(ids(viaFilter.candidates));
      expect(viaSlots.examined).toBeLessThanOrEqual(viaFilter.examined);
      if (refusedShare > 0.5) {
        examinedViaFilter += viaFilter.examined;
        examinedViaSlots += viaSlots.examined;
      }
    }
    // Refused regions are skipped unread.
    expect(examinedViaSlots).toBeLessThan(examinedViaFilter / 2);
  });
});

describe("explainExclusions", () => {
  it("gives a reason for every node that cannot serve", () => {
    const index = new FleetIndex([
      gpuNode("a", "nrt", "rtx4090", 24),
      node("b", "nrt", { health: "down" }),
      hotspot("c", "nrt"),
      gpuNode("d", "nrt", "b200", 192, { free: 0 }),
      node("e", "zzz"),
    ]);
    const reasons = Object.fromEntries(explainExclusions(index, { gpuClass: "b200" }).map((x) => [x.id, x.reason]));
    expect(reasons).toEqual({ a: "gpu-class-mismatch", b: "unhealthy", c: "kind-mismatch", d: "no-free-capacity", e: "unknown-region" });
  });
});
