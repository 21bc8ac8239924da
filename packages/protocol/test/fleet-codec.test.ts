import fc from "fast-check";
import { REGIONS } from "@meridian/regions";
import { describe, expect, it } from "vitest";
import { FLEET_CODEC_FORMAT, FleetCodecError, GPU_CLASSES, agentLoad, decodeFleetAnswer, encodeFleetAnswer, sortedById, type FleetAnswer, type NodeRecord, type NodeUpdate } from "../src";

const anyNumber = fc.oneof(
  fc.integer({ min: -1e6, max: 1e6 }),
  fc.double(),
  fc.integer({ min: 0, max: 1000 }).map((x) => x / 1000),
  fc.constantFrom(0, -0, 2 ** 53 - 1, -(2 ** 53) + 1, 1e300, Number.MIN_VALUE),
);
const time = fc.oneof(fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }), anyNumber);
const idArb = fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,20}$/);
const regionArb = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...REGIONS.map((r) => r.id)) }, { weight: 1, arbitrary: fc.constantFrom("", "zz-moon", "x") });

const recordArb = (id: fc.Arbitrary<string>): fc.Arbitrary<NodeRecord> =>
  fc
    .record(
      {
        id,
        kind: fc.constantFrom("gpu" as const, "hotspot" as const, "carrier" as const),
        region: regionArb,
        gpu: fc.record({ class: fc.constantFrom(...GPU_CLASSES), vramGb: fc.integer({ min: 1, max: 1024 }), count: fc.integer({ min: 1, max: 64 }) }),
        capacity: fc.oneof(fc.integer({ min: 0, max: 500 }), anyNumber),
        endpoint: fc.oneof(fc.string(), fc.constantFrom("https://", "http://127.0.0.1:8080/n/")),
        endpointEmbedsId: fc.boolean(),
        health: fc.constantFrom("healthy" as const, "suspect" as const, "draining" as const, "down" as const),
        healthReason: fc.string({ maxLength: 30 }),
        healthSince: time,
        returnedAt: time,
        inFlight: fc.oneof(fc.integer({ min: 0, max: 500 }), anyNumber),
        freeOwn: fc.option(anyNumber, { nil: undefined }),
        loadOwn: fc.option(anyNumber, { nil: undefined }),
        connectedOwn: fc.option(time, { nil: undefined }),
        partner: fc.string({ maxLength: 10 }),
        congestion: anyNumber,
        maxMbps: anyNumber,
        tier: fc.integer({ min: 1, max: 5 }),
        users: fc.nat(),
        geoFlag: fc.record({ colo: fc.string({ maxLength: 4 }), km: anyNumber }),
        models: fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}$/), { maxLength: 4 }),
        pricePerGpuHour: anyNumber,
        queue: fc.nat(),
        tokensPerSecond: anyNumber,
        credentialId: fc.oneof(fc.string({ maxLength: 60 }), fc.stringMatching(/^[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{16}$/)),
        seq: fc.oneof(fc.nat(), fc.integer({ min: 1_700_000_000_000_000, max: 1_800_000_000_000_000 }), anyNumber),
      },
      { requiredKeys: ["id", "kind", "region", "capacity", "endpoint", "endpointEmbedsId", "health", "healthReason", "healthSince", "inFlight", "seq"] },
    )
    .map(({ endpointEmbedsId, freeOwn, loadOwn, connectedOwn, endpoint, ...r }) => {
      const record: NodeRecord = {
        ...r,
        endpoint: endpointEmbedsId ? `${endpoint}${r.id}.example` : endpoint,
        free: freeOwn ?? r.capacity - r.inFlight,
        load: loadOwn ?? agentLoad(r.inFlight, r.capacity),
        connectedAt: connectedOwn ?? r.healthSince,
      };
      return record;
    });

const goneArb: fc.Arbitrary<NodeUpdate> = fc.record({ id: idArb, region: regionArb, gone: fc.constant(true as const), seq: fc.oneof(fc.nat(), anyNumber) });
const versionsArb = fc.record({ epoch: fc.string(), version: fc.nat(), policyVersion: fc.nat(), carriersVersion: fc.nat() });
const answerArb: fc.Arbitrary<FleetAnswer> = fc.oneof(
  fc.record({ versions: versionsArb, nodes: fc.array(recordArb(idArb), { maxLength: 20 }) }).map(({ versions, nodes }) => ({ kind: "full" as const, ...versions, nodes })),
  fc
    .record({ versions: versionsArb, updates: fc.array(fc.oneof(recordArb(idArb), goneArb), { maxLength: 20 }) })
    .map(({ versions, updates }) => ({ kind: "delta" as const, ...versions, updates })),
);

describe("fleet codec", () => {
  it("decodes exactly what it encoded, for random valid records, snapshots and deltas", () => {
    fc.assert(
      fc.property(answerArb, (answer) => {
        expect(decodeFleetAnswer(encodeFleetAnswer(answer))).toEqual(answer);
      }),
      { numRuns: 500 },
    );
  }, 60_000);

  it("keeps -0, NaN and infinities as they are", () => {
    const base: NodeRecord = { id: "n-1", kind: "hotspot", region: "fra", capacity: 4, endpoint: "https://n-1.x", health: "healthy", healthReason: "hello", healthSince: 0, load: -0, inFlight: 0, free: Number.NaN, connectedAt: Number.POSITIVE_INFINITY, seq: -0 };
    const out = decodeFleetAnswer(encodeFleetAnswer({ kind: "full", epoch: "e", version: 1, policyVersion: 0, carriersVersion: 0, nodes: [base] }));
    expect(out.kind === "full" && out.nodes[0]).toEqual(base);
    expect(out.kind === "full" && Object.is(out.nodes[0]?.load, -0)).toBe(true);
  });

  it("refuses invalid UTF-8 with its own error", () => {
    expect(() => decodeFleetAnswer(Uint8Array.from([FLEET_CODEC_FORMAT, 0, 1, 128]))).toThrow(FleetCodecError);
  });

  it("refuses an unknown format, truncated input and trailing bytes", () => {
    const bytes = encodeFleetAnswer({ kind: "delta", epoch: "e", version: 3, policyVersion: 1, carriersVersion: 0, updates: [{ id: "gone-1", region: "", gone: true, seq: 9 }] });
    expect(bytes[0]).toBe(FLEET_CODEC_FORMAT);
    expect(() => decodeFleetAnswer(Uint8Array.from([FLEET_CODEC_FORMAT + 1, ...bytes.subarray(1)]))).toThrow(FleetCodecError);
    expect(() => decodeFleetAnswer(bytes.subarray(0, bytes.length - 1))).toThrow(FleetCodecError);
    expect(() => decodeFleetAnswer(Uint8Array.from([...bytes, 0]))).toThrow(FleetCodecError);
  });

  it("never throws anything but FleetCodecError on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeFleetAnswer(Uint8Array.from([FLEET_CODEC_FORMAT, ...bytes]));
        } catch (err) {
          expect(err).toBeInstanceOf(FleetCodecError);
        }
      }),
      { numRuns: 2000 },
    );
  }, 60_000);

  it("spends well under 40 bytes a node on a fleet like the simulator's, and a delta follows its changes", () => {
    const nodes: NodeRecord[] = [];
    for (let i = 0; i < 2000; i++) {
      const region = REGIONS[i % REGIONS.length]?.id ?? "fra";
      const id = `sim-${region}-${i % 3 === 0 ? "hotspot" : "h100"}-${Math.floor(i / REGIONS.length) + 1}`;
      const capacity = 8 + (i % 57);
      const inFlight = i % capacity;
      nodes.push({
        id,
        kind: i % 3 === 0 ? "hotspot" : "gpu",
        region,
        ...(i % 3 === 0 ? { maxMbps: 100 } : { gpu: { class: "h100", vramGb: 80, count: 8 } }),
        capacity,
        endpoint: `https://${id}.nodes.example:8443`,
        health: "healthy",
        healthReason: "hello",
        healthSince: 1_764_000_000_000 - i * 7919,
        load: agentLoad(inFlight, capacity),
        inFlight,
        free: capacity - inFlight,
        connectedAt: 1_764_000_000_000 - i * 7919,
        // As the gateway issues them: the signing key's id, then 96 random bits.
        credentialId: `Cd-eI39s_${Buffer.from(Uint8Array.from({ length: 12 }, (_, k) => (i * 31 + k * 97) % 256)).toString("base64url")}`,
        seq: 1_764_000_000_000_000 + i * 13,
      });
    }
    const full = encodeFleetAnswer({ kind: "full", epoch: "e", version: 1, policyVersion: 1, carriersVersion: 0, nodes: sortedById(nodes) });
    const perNode = full.length / nodes.length;
    const delta = (n: number) => encodeFleetAnswer({ kind: "delta", epoch: "e", version: 2, policyVersion: 1, carriersVersion: 0, updates: nodes.slice(0, n) }).length;
    console.log(`full snapshot: ${perNode.toFixed(1)} B/node (JSON: ${(JSON.stringify(nodes).length / nodes.length).toFixed(0)}); delta of 10: ${delta(10)} B, of 100: ${delta(100)} B`);
    expect(perNode).toBeLessThan(40);
    expect(delta(100)).toBeGreaterThan(5 * delta(10) - 100);
    // A delta carries whole records without the full copy's id sharing: about 55 B each, with
    // its credential id (14 B) that signing needs.
    expect(delta(100)).toBeLessThan(100 * 60);
  });
});
