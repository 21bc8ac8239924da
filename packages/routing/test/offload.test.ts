import type { CarrierPartner, NodeRecord, OffloadRules } from "@meridian/protocol";
import { REGIONS, getRegion, greatCircleKm } from "@meridian/regions";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DialBook, FleetIndex, chooseOffload, dialPercent, hotspotCensus, nextEngaged, slotOf, subscriberBucket } from "../src";
import { hotspot, node, rng } from "./fixtures";

const LONDON = { lat: 51.5074, lon: -0.1278 };
const RULES: OffloadRules = { maxHotspotKm: 50, minTier: 2, congestionThreshold: 0.7, hysteresis: 0.2, dial: { base: 30, max: 90 } };
const PARTNER: CarrierPartner = { id: "carrier-a", name: "Carrier A", regions: ["lhr", "man"], offload: RULES };

const carrier = (id: string, region: string, over: Partial<NodeRecord> = {}): NodeRecord => {
  const { gpu: _omit, ...base } = node(id, region, over);
  return { ...base, kind: "carrier", partner: "carrier-a", congestion: 0, ...over };
};
const spot = (id: string, region: string, over: Partial<NodeRecord> = {}) => hotspot(id, region, { tier: 3, maxMbps: 300, ...over });
const partnerWith = (offload: Partial<OffloadRules>): CarrierPartner => ({ ...PARTNER, offload: { ...RULES, ...offload } });
const decide = (nodes: NodeRecord[], over: Partial<Parameters<typeof chooseOffload>[1]> = {}) =>
  chooseOffload(new FleetIndex(nodes), { client: LONDON, partner: PARTNER, bucket: 10, dials: new DialBook(), ...over });
const ids = (d: { candidates: { node: NodeRecord }[] }) => d.candidates.map((c) => c.node.id);

describe("offload dial", () => {
  it("engages at the threshold and releases only below threshold minus hysteresis", () => {
    expect(nextEngaged(false, 0.69, RULES)).toBe(false);
    expect(nextEngaged(false, 0.7, RULES)).toBe(true);
    expect(nextEngaged(true, 0.55, RULES)).toBe(true); // inside the band: stays
    expect(nextEngaged(false, 0.55, RULES)).toBe(false);
    expect(nextEngaged(true, 0.49, RULES)).toBe(false);
  });

  it("is base when disengaged, rises with congestion to max, and is never outside [base, max]", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (engaged, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const pLo = dialPercent(engaged, lo, RULES);
        const pHi = dialPercent(engaged, hi, RULES);
        expect(pLo).toBeGreaterThanOrEqual(RULES.dial.base);
        expect(pHi).toBeLessThanOrEqual(RULES.dial.max);
        expect(pHi).toBeGreaterThanOrEqual(pLo);
        if (!engaged) expect(pLo).toBe(RULES.dial.base);
      }),
    );
    expect(dialPercent(true, 1, RULES)).toBe(RULES.dial.max);
  });

  it("does not flap: once engaged, congestion wandering inside the band never changes the state", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.5 + 1e-9, max: 0.7 - 1e-9, noNaN: true }), { maxLength: 200 }), (readings) => {
        let engaged = nextEngaged(false, 0.95, RULES);
        for (const c of readings) engaged = nextEngaged(engaged, c, RULES);
        expect(engaged).toBe(true);
        let idle = false;
        for (const c of readings) idle = nextEngaged(idle, c, RULES);
        expect(idle).toBe(false);
      }),
    );
  });

  it("comes back to base continuously: no jump when the boost releases", () => {
    const justAbove = dialPercent(true, RULES.congestionThreshold - RULES.hysteresis + 1e-9, RULES);
    expect(justAbove).toBeCloseTo(RULES.dial.base, 5);
  });

  it("keeps one state per backbone node", () => {
    const book = new DialBook();
    expect(book.read(carrier("c1", "lhr", { congestion: 0.9 }), RULES).engaged).toBe(true);
    expect(book.read(carrier("c2", "lhr", { congestion: 0.6 }), RULES).engaged).toBe(false);
    expect(book.read(carrier("c1", "lhr", { congestion: 0.6 }), RULES).engaged).toBe(true);
    expect(book.engaged()).toEqual(["c1"]);
  });
});

describe("subscriberBucket", () => {
  it("is stable and spreads subscribers evenly over [0, 100)", () => {
    expect(subscriberBucket("imsi-310260000000001")).toBe(subscriberBucket("imsi-310260000000001"));
    const deciles = new Array<number>(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const b = subscriberBucket(`subscriber-${i}`);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(100);
      deciles[Math.floor(b / 10)] = (deciles[Math.floor(b / 10)] ?? 0) + 1;
    }
    for (const count of deciles) expect(count).toBeGreaterThan(1_800), expect(count).toBeLessThan(2_200);
  });
});

describe("chooseOffload", () => {
  const fleet = [carrier("lhr-bb", "lhr"), carrier("man-bb", "man"), spot("lhr-hs", "lhr")];

  it("offloads a subscriber inside the base dial to the hotspot, with the backbone as fallback", () => {
    const d = decide(fleet, { bucket: 10 });
    expect(d.route).toBe("offload");
    expect(d.reason).toBe("dial");
    expect(ids(d)).toEqual(["lhr-hs", "lhr-bb"]);
    expect(d.dial).toMatchObject({ backbone: "lhr-bb", percent: 30, engaged: false });
  });

  it("keeps a subscriber outside the dial on the backbone, until congestion raises the dial past it", () => {
    expect(decide(fleet, { bucket: 60 })).toMatchObject({ route: "backbone", reason: "outside-dial" });
    const congested = [carrier("lhr-bb", "lhr", { congestion: 0.95 }), spot("lhr-hs", "lhr")];
    const d = decide(congested, { bucket: 60 });
    expect(d).toMatchObject({ route: "offload", reason: "congestion" });
    expect(d.dial?.percent).toBeCloseTo(30 + 60 * (0.95 - 0.5) / 0.5, 5);
  });

  it("refuses hotspots below the minimum tier, of unknown tier, or too far away", () => {
    expect(decide([carrier("lhr-bb", "lhr"), spot("lhr-hs", "lhr", { tier: 1 })])).toMatchObject({ route: "backbone", reason: "no-qualifying-hotspot" });
    const { tier: _t, ...unknownTier } = spot("lhr-hs", "lhr");
    expect(decide([carrier("lhr-bb", "lhr"), unknownTier])).toMatchObject({ route: "backbone", reason: "no-qualifying-hotspot" });
    // Manchester is about 260 km from London.
    expect(decide([carrier("lhr-bb", "lhr"), spot("man-hs", "man")])).toMatchObject({ route: "backbone", reason: "no-qualifying-hotspot" });
    const wide = decide([carrier("lhr-bb", "lhr"), spot("man-hs", "man")], { partner: partnerWith({ maxHotspotKm: 300 }) });
    expect(ids(wide)).toEqual(["man-hs", "lhr-bb"]);
  });

  it("uses only the partner's own backbone, and only in the partner's regions", () => {
    const other = carrier("lhr-other", "lhr", { partner: "carrier-b" });
    expect(ids(decide([other, carrier("man-bb", "man")], { bucket: 99 }))).toEqual(["man-bb"]);
    const paris = { lat: 48.8566, lon: 2.3522 };
    expect(decide([...fleet, spot("cdg-hs", "cdg")], { client: paris })).toMatchObject({ route: "backbone", reason: "outside-partner-regions", clientRegion: "cdg" });
    expect(decide(fleet, { client: null })).toMatchObject({ route: "backbone", reason: "client-location-unknown" });
  });

  it("follows the policy: a refused hotspot slot is never offered", () => {
    const noHotspots = (_region: number, slot: number) => slot !== slotOf("hotspot", undefined);
    expect(decide(fleet, { allowed: noHotspots })).toMatchObject({ route: "backbone", reason: "no-qualifying-hotspot" });
    const noBackbone = (_region: number, slot: number) => slot !== slotOf("carrier", undefined);
    expect(decide(fleet, { allowed: noBackbone, bucket: 99 })).toMatchObject({ route: "offload", reason: "backbone-unavailable" });
    expect(decide(fleet, { allowed: () => false })).toMatchObject({ route: "none", candidates: [] });
  });

  it("ranks a hotspot that connects from far outside its region behind honest ones", () => {
    const flagged = spot("lhr-flagged", "lhr", { geoFlag: { colo: "sin", km: 10_880 } });
    const honest = spot("lhr-honest", "lhr", { load: 0.9 });
    expect(ids(decide([carrier("lhr-bb", "lhr"), flagged, honest]))[0]).toBe("lhr-honest");
    expect(ids(decide([carrier("lhr-bb", "lhr"), flagged]))[0]).toBe("lhr-flagged");
  });

  it("offloads the dial's share of subscribers", () => {
    for (const base of [0, 25, 50, 100]) {
      const partner = partnerWith({ dial: { base, max: 100 } });
      const index = new FleetIndex(fleet);
      const dials = new DialBook();
      let offloaded = 0;
      const n = 4000;
      for (let i = 0; i < n; i++) {
        if (chooseOffload(index, { client: LONDON, partner, bucket: subscriberBucket(`sub-${i}`), dials }).route === "offload") offloaded++;
      }
      expect(Math.abs((offloaded / n) * 100 - base)).toBeLessThan(2.5);
    }
  });

  it("never offloads to a hotspot that breaks the partner's rules (random fleets)", () => {
    const random = rng(7);
    const near = REGIONS.filter((r) => greatCircleKm(LONDON.lat, LONDON.lon, r.lat, r.lon) < 1200).map((r) => r.id);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 99 }), (minTier, maxHotspotKm, bucket) => {
        const nodes: NodeRecord[] = [];
        for (let i = 0; i < 40; i++) {
          const region = near[Math.floor(random() * near.length)] ?? "lhr";
          const health = random() < 0.2 ? "down" : "healthy";
          if (random() < 0.3) nodes.push(carrier(`c-${i}`, region, { health, congestion: random() }));
          else nodes.push(spot(`h-${i}`, region, { health, tier: 1 + Math.floor(random() * 5), free: random() < 0.1 ? 0 : 4 }));
        }
        const partner = partnerWith({ minTier, maxHotspotKm });
        const d = chooseOffload(new FleetIndex(nodes), { client: LONDON, partner, bucket, dials: new DialBook() });
        for (const { node: n } of d.candidates) {
          expect(n.health).toBe("healthy");
          expect(n.free).toBeGreaterThan(0);
          if (n.kind === "carrier") expect(n.partner).toBe("carrier-a");
          if (n.kind === "hotspot") {
            const region = getRegion(n.region);
            expect(region).toBeDefined();
            if (region) expect(greatCircleKm(LONDON.lat, LONDON.lon, region.lat, region.lon)).toBeLessThanOrEqual(maxHotspotKm);
            expect(n.tier ?? 0).toBeGreaterThanOrEqual(minTier);
          }
        }
        if (d.route === "offload" && d.dial !== null) expect(bucket).toBeLessThan(d.dial.percent);
      }),
      { numRuns: 300 },
    );
  });
});

describe("hotspotCensus", () => {
  it("says why each hotspot within reach does not qualify", () => {
    const index = new FleetIndex([
      spot("a", "lhr"),
      spot("b", "lhr", { tier: 1 }),
      spot("c", "lhr", { health: "down" }),
      spot("d", "lhr", { geoFlag: { colo: "sin", km: 10_880 } }),
      spot("e", "man"),
    ]);
    const census = hotspotCensus(index, LONDON, RULES, (n) => (n.id === "a" ? "ejected" : null));
    expect(census).toEqual({ nearestKm: 0, withinReach: 4, qualifying: 1, excluded: { ejected: 1, "tier-too-low": 1, unhealthy: 1, "geo-flagged (ranked last)": 1 } });
  });
});
