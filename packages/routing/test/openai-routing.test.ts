import fc from "fast-check";
import type { NodeRecord, Steering } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { describe, expect, it } from "vitest";
import { AFFINITY_RTT_BOUND_MS, FleetIndex, SLOW_START_MS, STEER_RTT_BOUND_MS, modelCatalog, rendezvousPick, route } from "../src";
import { node, rng } from "./fixtures";

const TOKYO = { lat: 35.6762, lon: 139.6503 };
const EDMONTON = { lat: 53.5461, lon: -113.4938 };
const MODELS = ["small-8b", "mid-32b", "large-70b"] as const;
const ASIA = REGIONS.filter((r) => r.continent === "AS").map((r) => r.id);

/** A random fleet around Asia: models, prices, queues and loads drawn from `seed`. */
function fleet(seed: number, n: number): NodeRecord[] {
  const random = rng(seed);
  return Array.from({ length: n }, (_, k) => {
    const region = ASIA[Math.floor(random() * ASIA.length)] ?? "nrt";
    const models = MODELS.filter(() => random() < 0.5);
    return node(`n-${region}-${k}`, region, {
      models,
      ...(random() < 0.8 ? { pricePerGpuHour: Math.round(random() * 40) / 10 } : {}),
      queue: random() < 0.3 ? Math.floor(random() * 5) : 0,
      tokensPerSecond: Math.round(random() * 500),
      load: Math.round(random() * 100) / 100,
    });
  });
}

const steeringArb = fc.constantFrom<Steering>("latency", "cost", "balanced");

describe("model-aware routing", () => {
  it("only ever picks nodes that advertise the model and fit the price cap, and finds one when one exists", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 200 }), fc.constantFrom(...MODELS), fc.option(fc.double({ min: 0, max: 5, noNaN: true }), { nil: undefined }), steeringArb, (seed, n, model, maxPrice, steer) => {
        const nodes = fleet(seed, n);
        const decision = route(new FleetIndex(nodes), { client: TOKYO, requirements: { model, ...(maxPrice !== undefined ? { maxPrice } : {}) }, steer });
        for (const c of decision.candidates) {
          expect(c.node.models).toContain(model);
          if (maxPrice !== undefined) expect(c.node.pricePerGpuHour ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(maxPrice);
        }
        const exists = nodes.some((x) => x.models?.includes(model) && (maxPrice === undefined || (x.pricePerGpuHour ?? Number.POSITIVE_INFINITY) <= maxPrice));
        expect(decision.candidates.length > 0).toBe(exists);
      }),
      { numRuns: 150 },
    );
  });

  it("scores are the sum of their parts, and cost steering takes the cheapest node within its RTT bound", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 150 }), steeringArb, (seed, n, steer) => {
        const nodes = fleet(seed, n).map((x) => ({ ...x, load: 0, queue: 0 }));
        const decision = route(new FleetIndex(nodes), { client: TOKYO, requirements: {}, steer, fallbacks: 4 });
        for (const c of decision.candidates) {
          const p = c.parts;
          expect(p).toBeDefined();
          if (p) expect(p.rttMs + p.loadMs + p.penaltyMs + p.slowStartMs + p.priceMs).toBeCloseTo(c.score, 6);
        }
        if (steer !== "cost") return;
        const all = route(new FleetIndex(nodes), { client: TOKYO, requirements: {}, fallbacks: n });
        const nearest = Math.min(...all.candidates.map((c) => c.rttMs));
        const withinBound = all.candidates.filter((c) => c.rttMs <= nearest + STEER_RTT_BOUND_MS);
        const priceOf = (x: NodeRecord) => x.pricePerGpuHour ?? 10;
        const cheapest = Math.min(...withinBound.map((c) => priceOf(c.node)));
        const primary = decision.candidates[0];
        expect(primary).toBeDefined();
        if (primary) {
          expect(primary.rttMs).toBeLessThanOrEqual(nearest + STEER_RTT_BOUND_MS);
          expect(priceOf(primary.node)).toBe(cheapest);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("ranks a node with a queue behind an equally near idle one, more so at a low token rate", () => {
    const idle = node("nrt-idle", "nrt");
    const queued = node("nrt-queued", "nrt", { queue: 3, tokensPerSecond: 50 });
    const fast = node("nrt-fast", "nrt", { queue: 3, tokensPerSecond: 5000 });
    const decision = route(new FleetIndex([queued, fast, idle]), { client: TOKYO, requirements: {} });
    expect(decision.candidates.map((c) => c.node.id)).toEqual(["nrt-idle", "nrt-fast", "nrt-queued"]);
  });

  it("lists each model with its nodes, regions, GPU classes and prices, under the caller's filter", () => {
    const nodes = [
      node("nrt-1", "nrt", { models: ["a", "b"], pricePerGpuHour: 2 }),
      node("kix-1", "kix", { models: ["b"], pricePerGpuHour: 1, gpu: { class: "l40s", vramGb: 48, count: 1 } }),
      node("icn-1", "icn", { models: ["c"], health: "down" }),
      node("fra-1", "fra", { models: ["d"] }),
    ];
    const catalog = modelCatalog(new FleetIndex(nodes), (x) => x.region !== "fra");
    expect(catalog.map((m) => m.id)).toEqual(["a", "b"]);
    expect(catalog[1]).toMatchObject({ id: "b", nodes: 2, regions: ["kix", "nrt"], gpuClasses: ["h100", "l40s"], minPricePerGpuHour: 1, maxPricePerGpuHour: 2 });
    expect(modelCatalog(new FleetIndex(nodes), () => true, (m) => m === "a").map((m) => m.id)).toEqual(["a"]);
  });
});

describe("session affinity", () => {
  it("sends a key to the same node whatever the load does, among the nodes within the RTT bound", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 2, max: 80 }), fc.string({ minLength: 1, maxLength: 20 }), (seed, n, key) => {
        const nodes = fleet(seed, n);
        const first = route(new FleetIndex(nodes), { client: TOKYO, requirements: {}, affinityKey: key }).candidates[0];
        const reloaded = nodes.map((x, k) => ({ ...x, load: ((k * 37) % 100) / 100, queue: k % 3 }));
        const again = route(new FleetIndex(reloaded), { client: TOKYO, requirements: {}, affinityKey: key }).candidates[0];
        expect(again?.node.id).toBe(first?.node.id);
        expect(first?.affinity).toBe(true);
        const nearest = route(new FleetIndex(nodes), { client: TOKYO, requirements: {}, fallbacks: n }).candidates.reduce((m, c) => Math.min(m, c.rttMs), Number.POSITIVE_INFINITY);
        expect(first?.rttMs ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(nearest + AFFINITY_RTT_BOUND_MS + 1e-9);
      }),
      { numRuns: 100 },
    );
  });

  it("moves only the keys of a node that leaves", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 2, max: 30 }), fc.nat(), (seed, n, leaverPick) => {
        const nodes = fleet(seed, n).map((x) => ({ ...x, region: "nrt" }));
        const leaver = nodes[leaverPick % nodes.length]?.id ?? "";
        const before = new FleetIndex(nodes);
        const after = new FleetIndex(nodes.filter((x) => x.id !== leaver));
        for (let k = 0; k < 50; k++) {
          const key = `session-${seed}-${k}`;
          const a = route(before, { client: TOKYO, requirements: {}, affinityKey: key }).candidates[0]?.node.id;
          const b = route(after, { client: TOKYO, requirements: {}, affinityKey: key }).candidates[0]?.node.id;
          if (a !== leaver) expect(b).toBe(a);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("agrees with the plain rendezvous pick over the pooled ids", () => {
    const nodes = ["nrt-a", "nrt-b", "nrt-c", "nrt-d"].map((id) => node(id, "nrt"));
    for (let k = 0; k < 100; k++) {
      const key = `k${k}`;
      expect(route(new FleetIndex(nodes), { client: TOKYO, requirements: {}, affinityKey: key }).candidates[0]?.node.id).toBe(rendezvousPick(key, nodes.map((x) => x.id)));
    }
  });
});

describe("slow start limits share, not geography", () => {
  const T = 5_000_000;
  it("after a restart, nodes that returned together rank by distance (Edmonton goes to Vancouver)", () => {
    // Seattle reconnected 2 s before Vancouver; both are in slow start.
    const index = new FleetIndex([node("sea-1", "sea", { returnedAt: T }), node("yvr-1", "yvr", { returnedAt: T + 2000 })]);
    let toSeattle = 0;
    const samples = 1000;
    for (let s = 0; s < samples; s++) {
      const primary = route(index, { client: EDMONTON, requirements: {}, now: T + 5000, sample: s / samples }).candidates[0]?.node.id;
      if (primary === "sea-1") toSeattle++;
    }
    console.log(`[slow start] Edmonton -> Seattle in ${toSeattle}/${samples} decisions 5 s after a restart (before: every one)`);
    // Only the decisions that fall between the two nodes' ramps (2 s of 30 s) go the wrong way.
    expect(toSeattle / samples).toBeLessThanOrEqual(2000 / SLOW_START_MS + 0.01);
  });

  it("gives a lone returning node about its ramp's share of the traffic it would win", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), (f) => {
        const index = new FleetIndex([node("nrt-back", "nrt", { returnedAt: T }), node("kix-1", "kix")]);
        const now = T + f * SLOW_START_MS;
        let won = 0;
        for (let s = 0; s < 200; s++) if (route(index, { client: TOKYO, requirements: {}, now, sample: (s + 0.5) / 200 }).candidates[0]?.node.id === "nrt-back") won++;
        expect(Math.abs(won / 200 - f)).toBeLessThanOrEqual(0.01);
      }),
      { numRuns: 50 },
    );
  });
});
