import fc from "fast-check";
import { GPU_CLASSES, type NodeRecord, type NodeUpdate, type Requirements } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { describe, expect, it } from "vitest";
import { FleetIndex, explainExclusions, route, type RouteInput } from "../src";
import { gpuNode, hotspot, node } from "./fixtures";

// A few regions close together (so many tie and prune) plus far ones, and one outside the catalog.
const REGION_POOL = ["fra", "ams", "cdg", "lhr", "nrt", "icn", "sin", "iad", "gru", "syd", "zz-unknown"];
const ID_POOL = Array.from({ length: 40 }, (_, i) => `node-${i}`);

const recordArb = (id: string): fc.Arbitrary<NodeRecord> =>
  fc
    .record({
      region: fc.constantFrom(...REGION_POOL),
      shape: fc.constantFrom("h100", "b200", "rtx4090", "gpu-no-class", "hotspot", "carrier"),
      health: fc.constantFrom("healthy", "healthy", "suspect", "draining", "down"),
      load: fc.integer({ min: 0, max: 8 }).map((x) => x / 8),
      free: fc.integer({ min: 0, max: 3 }),
      vram: fc.constantFrom(24, 80, 192),
      returnedAt: fc.option(fc.integer({ min: 0, max: 60_000 }), { nil: undefined }),
      geo: fc.boolean(),
      seq: fc.nat(),
      // Often the same list as before (a health or load change), sometimes another one.
      models: fc.option(fc.constantFrom(["llama-3-8b"], ["llama-3-8b", "qwen-2-7b"], ["qwen-2-7b"]), { nil: undefined }),
    })
    .map(({ region, shape, health, load, free, vram, returnedAt, geo, seq, models }) => {
      const over: Partial<NodeRecord> = {
        health,
        load,
        free,
        seq,
        ...(returnedAt !== undefined ? { returnedAt } : {}),
        ...(geo ? { geoFlag: { colo: "LAX", km: 9000 } } : {}),
      };
      if (models !== undefined) over.models = [...models];
      if (shape === "hotspot") return hotspot(id, region, over);
      if (shape === "carrier") {
        const { gpu: _gpu, ...base } = node(id, region, over);
        return { ...base, kind: "carrier" as const, partner: "tmo-us" };
      }
      if (shape === "gpu-no-class") {
        const { gpu: _gpu, ...base } = node(id, region, over);
        return base;
      }
      return gpuNode(id, region, shape === "h100" ? "h100" : shape === "b200" ? "b200" : "rtx4090", vram, over);
    });

const updateArb: fc.Arbitrary<NodeUpdate> = fc.constantFrom(...ID_POOL).chain((id) =>
  fc.oneof({ weight: 4, arbitrary: recordArb(id) }, { weight: 1, arbitrary: fc.constant({ id, region: "fra", gone: true as const, seq: 0 }) }),
);

const REQUIREMENTS: Requirements[] = [{}, { kind: "gpu" }, { kind: "hotspot" }, { kind: "carrier" }, { gpuClass: "h100" }, { minVramGb: 80 }, { model: "qwen-2-7b" }, { model: "llama-3-8b" }];
const queryArb = fc.record({
  client: fc.option(fc.record({ lat: fc.double({ min: -60, max: 70, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }) }), { nil: null }),
  requirements: fc.constantFrom(...REQUIREMENTS),
  fallbacks: fc.integer({ min: 0, max: 4 }),
  // A policy as a set of refused (region, slot) cells, and a per-node filter.
  refused: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: REGIONS.length - 1 }), fc.integer({ min: 0, max: GPU_CLASSES.length + 2 })), { maxLength: 30 }),
  filterOdd: fc.boolean(),
  maxDistanceKm: fc.option(fc.integer({ min: 500, max: 20_000 }), { nil: undefined }),
});

type Query = typeof queryArb extends fc.Arbitrary<infer T> ? T : never;

function answer(index: FleetIndex, q: Query) {
  const refused = new Set(q.refused.map(([r, s]) => `${r}/${s}`));
  const input: RouteInput = {
    client: q.client,
    requirements: q.requirements,
    fallbacks: q.fallbacks,
    allowed: (r, s) => !refused.has(`${r}/${s}`),
    now: 30_000,
    ...(q.filterOdd ? { filter: (n: NodeRecord) => (Number(n.id.slice(5)) % 2 === 1 ? "odd" : null) } : {}),
    ...(q.maxDistanceKm !== undefined && q.client !== null ? { maxDistanceKm: q.maxDistanceKm } : {}),
  };
  const decision = route(index, input);
  return { candidates: decision.candidates.map((c) => [c.node.id, c.score, c.rttMs]), examined: decision.examined };
}

describe("FleetIndex.apply", () => {
  it("answers every route() exactly as an index rebuilt from the same records, over random delta streams", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...ID_POOL).chain(recordArb), { maxLength: 30 }),
        fc.array(fc.array(updateArb, { maxLength: 12 }), { minLength: 1, maxLength: 8 }),
        fc.array(queryArb, { minLength: 1, maxLength: 6 }),
        (initial, batches, queries) => {
          const model = new Map<string, NodeRecord>();
          for (const r of initial) model.set(r.id, r);
          // Built from the raw list (duplicate ids included: the later one wins, as in the Map).
          const index = new FleetIndex(initial);
          for (const batch of batches) {
            index.apply(batch);
            for (const u of batch) {
              if ("gone" in u) model.delete(u.id);
              else model.set(u.id, u);
            }
            const rebuilt = new FleetIndex([...model.values()]);
            expect(index.size).toBe(rebuilt.size);
            expect([...index.regionSlots]).toEqual([...rebuilt.regionSlots]);
            expect(index.regionNodes.map((m) => m.length)).toEqual(rebuilt.regionNodes.map((m) => m.length));
            for (const q of queries) expect(answer(index, q)).toEqual(answer(rebuilt, q));
            const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
            expect(explainExclusions(index, {}).sort(byId)).toEqual(explainExclusions(rebuilt, {}).sort(byId));
          }
          expect(index.nodes().sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual([...model.values()].sort((a, b) => (a.id < b.id ? -1 : 1)));
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);

  it("grows past its first capacity and reuses freed positions", () => {
    const index = new FleetIndex([node("a-1", "fra")]);
    const many = Array.from({ length: 500 }, (_, i) => node(`b-${i}`, i % 2 === 0 ? "fra" : "nrt"));
    index.apply(many);
    expect(index.size).toBe(501);
    index.apply(many.slice(0, 250).map((n) => ({ id: n.id, region: n.region, gone: true as const, seq: 2 })));
    expect(index.size).toBe(251);
    const highWater = index.records.length;
    index.apply(Array.from({ length: 250 }, (_, i) => node(`c-${i}`, "ams")));
    expect(index.records.length).toBe(highWater);
    expect(index.get("c-3")?.region).toBe("ams");
    expect(index.get("b-3")).toBeUndefined();
    const decision = route(index, { client: { lat: 52.37, lon: 4.9 }, requirements: {}, fallbacks: 0 });
    expect(decision.candidates[0]?.node.region).toBe("ams");
  });
});
