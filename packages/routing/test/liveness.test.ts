import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DESIGN_LOSS_RATE,
  MAX_DOWN_INTERVALS,
  MIN_SD_MS,
  PHI_DOWN,
  PHI_SUSPECT,
  newArrivalStats,
  observeArrival,
  phi,
  stepLiveness,
  type ArrivalStats,
  type Liveness,
  type SilenceLimits,
} from "../src";

const HB = 1000;
/** Fixed limits for the state-machine tests: suspect after 1.5 intervals, down after 3.3. */
const LIMITS: SilenceLimits = { heartbeatMs: HB, suspectAfterMs: 1500, downAfterMs: 3300 };
const healthy: Liveness = { health: "healthy", reason: "hello", goodChecks: 0, recentDowns: [] };

/** Frames at nominal times k x interval, moved by `offsets[k]`; `lost[k]` drops frame k. */
function feed(stats: ArrivalStats, offsets: readonly number[], lost: readonly boolean[] = [], heartbeatMs = HB): ArrivalStats {
  let s = stats;
  offsets.forEach((offset, k) => {
    if (!lost[k]) s = observeArrival(s, (k + 1) * heartbeatMs + offset, heartbeatMs);
  });
  return s;
}

describe("stepLiveness", () => {
  it("goes healthy -> suspect past the suspect limit -> down past the down limit", () => {
    expect(stepLiveness(healthy, 900, LIMITS, 10_000)).toMatchObject({ health: "healthy", changed: false, nextCheckAt: 10_000 - 900 + 1501 });
    const suspect = stepLiveness(healthy, 1600, LIMITS, 10_000);
    expect(suspect).toMatchObject({ health: "suspect", changed: true, nextCheckAt: 10_000 - 1600 + 3301 });
    expect(stepLiveness(suspect, 3200, LIMITS, 11_600)).toMatchObject({ health: "suspect", changed: false });
    expect(stepLiveness(suspect, 3400, LIMITS, 11_800)).toMatchObject({ health: "down", changed: true, recentDowns: [11_800] });
  });

  it("clears suspicion at once when a frame arrives", () => {
    const suspect = stepLiveness(healthy, 1600, LIMITS, 10_000);
    expect(stepLiveness(suspect, 100, LIMITS, 10_500)).toMatchObject({ health: "healthy", reason: "heartbeat resumed" });
  });

  it("needs two fresh checks in a row to come back, and starts over after a silent one", () => {
    let state: Liveness = stepLiveness(healthy, 4000, LIMITS, 10_000);
    state = stepLiveness(state, 200, LIMITS, 11_000);
    expect(state).toMatchObject({ health: "down", goodChecks: 1 });
    state = stepLiveness(state, 1500, LIMITS, 12_000);
    expect(state).toMatchObject({ health: "down", goodChecks: 0 });
    state = stepLiveness(state, 200, LIMITS, 13_000);
    state = stepLiveness(state, 200, LIMITS, 14_000);
    expect(state).toMatchObject({ health: "healthy", goodChecks: 0 });
  });

  it("damps flapping: each recent down adds a required good check", () => {
    let state: Liveness = healthy;
    let now = 100_000;
    for (let flap = 0; flap < 3; flap++) {
      state = stepLiveness(state, 4000, LIMITS, (now += 1000));
      let checks = 0;
      while (state.health === "down") {
        state = stepLiveness(state, 100, LIMITS, (now += 1000));
        checks++;
      }
      expect(checks).toBe(2 + flap);
    }
    // Long after, the history is forgotten.
    state = stepLiveness(state, 4000, LIMITS, (now += 10 * 60_000));
    expect(state.recentDowns).toHaveLength(1);
  });

  it("leaves draining nodes alone", () => {
    expect(stepLiveness({ ...healthy, health: "draining" }, 60_000, LIMITS, 100_000)).toMatchObject({ health: "draining", changed: false });
  });
});

describe("failure detector (phi accrual over frame gaps)", () => {
  it("puts its limits where phi crosses the thresholds", () => {
    const stats = feed(newArrivalStats(HB, 0), Array.from({ length: 200 }, (_, k) => ((k * 37) % 401) - 200));
    expect(phi(stats.suspectAfterMs - 1, stats, HB, 0)).toBeLessThan(PHI_SUSPECT);
    expect(phi(stats.suspectAfterMs, stats, HB, 0)).toBeGreaterThanOrEqual(PHI_SUSPECT);
    expect(phi(stats.downAfterMs - 1, stats, HB, DESIGN_LOSS_RATE)).toBeLessThan(PHI_DOWN);
    expect(phi(stats.downAfterMs, stats, HB, DESIGN_LOSS_RATE)).toBeGreaterThanOrEqual(PHI_DOWN);
  });

  it("tolerates two lost frames in a row at 1 s +-200 ms, and calls a silent node down within 3.5 s", () => {
    // Offsets spread over +-200 ms, as the simulator's --jitter-ms 200 draws them.
    const stats = feed(newArrivalStats(HB, 0), Array.from({ length: 300 }, (_, k) => ((k * 37) % 401) - 200));
    expect(stats.downAfterMs).toBeGreaterThan(3 * HB);
    expect(stats.downAfterMs).toBeLessThan(3500);
    // A node that keeps perfect time is still given two lost frames plus the deviation floor.
    const steady = feed(newArrivalStats(HB, 0), Array.from({ length: 300 }, () => 0));
    expect(steady.downAfterMs).toBeGreaterThanOrEqual(3 * HB + MIN_SD_MS);
    expect(steady.suspectAfterMs).toBeGreaterThanOrEqual(HB + 3 * MIN_SD_MS);
  });

  it("does not take lost frames for jitter", () => {
    const offsets = Array.from({ length: 300 }, (_, k) => ((k * 53) % 201) - 100);
    const clean = feed(newArrivalStats(HB, 0), offsets);
    const lossy = feed(newArrivalStats(HB, 0), offsets, offsets.map((_, k) => k % 10 === 5));
    expect(lossy.lostFrames).toBe(30);
    expect(Math.abs(lossy.downAfterMs - clean.downAfterMs)).toBeLessThan(50);
  });

  it("gives a jittery node more time, up to the cap", () => {
    const calm = feed(newArrivalStats(HB, 0), Array.from({ length: 200 }, (_, k) => (k % 2 === 0 ? -50 : 50)));
    const jittery = feed(newArrivalStats(HB, 0), Array.from({ length: 200 }, (_, k) => (k % 2 === 0 ? -150 : 150)));
    expect(jittery.suspectAfterMs).toBeGreaterThan(calm.suspectAfterMs + 300);
    expect(jittery.downAfterMs).toBeGreaterThan(calm.downAfterMs + 300);
    expect(jittery.downAfterMs).toBeLessThanOrEqual(MAX_DOWN_INTERVALS * HB);
  });

  it("ignores frames that are not newer, and off-rhythm frames as samples", () => {
    const stats = feed(newArrivalStats(HB, 0), [0, 0, 0]);
    expect(observeArrival(stats, stats.lastArrivalAt, HB)).toBe(stats);
    const drain = observeArrival(stats, stats.lastArrivalAt + 50, HB);
    expect(drain).toMatchObject({ lastArrivalAt: stats.lastArrivalAt + 50, samples: stats.samples, meanGapMs: stats.meanGapMs });
  });

  it("property: limits are ordered and scale with the interval", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 250, max: 10_000 }),
        fc.array(fc.double({ min: -0.3, max: 0.3, noNaN: true }), { minLength: 1, maxLength: 80 }),
        fc.array(fc.boolean(), { maxLength: 80 }),
        (heartbeatMs, jitterShares, lost) => {
          const stats = feed(newArrivalStats(heartbeatMs, 0), jitterShares.map((j) => j * heartbeatMs), lost, heartbeatMs);
          expect(stats.suspectAfterMs).toBeGreaterThan(heartbeatMs);
          expect(stats.downAfterMs).toBeGreaterThan(stats.suspectAfterMs);
          // Past two lost frames, never past the cap.
          expect(stats.downAfterMs).toBeGreaterThan(3 * stats.meanGapMs);
          expect(stats.downAfterMs).toBeLessThanOrEqual(MAX_DOWN_INTERVALS * heartbeatMs);
        },
      ),
    );
  });

  it("property: phi grows with silence", () => {
    const stats = feed(newArrivalStats(HB, 0), Array.from({ length: 50 }, (_, k) => ((k * 71) % 301) - 150));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6000 }), fc.integer({ min: 1, max: 1000 }), (t, extra) => {
        expect(phi(t + extra, stats, HB, DESIGN_LOSS_RATE)).toBeGreaterThanOrEqual(phi(t, stats, HB, DESIGN_LOSS_RATE));
      }),
    );
  });
});
