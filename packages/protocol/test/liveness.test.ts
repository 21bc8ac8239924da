import { describe, expect, it } from "vitest";
import { stepLiveness, type Liveness } from "../src";

const HB = 1000;
const healthy: Liveness = { health: "healthy", reason: "hello", goodChecks: 0, recentDowns: [] };

describe("stepLiveness", () => {
  it("goes healthy -> suspect after 1.5 intervals of silence -> down after 2.5", () => {
    expect(stepLiveness(healthy, 900, HB, 10_000)).toMatchObject({ health: "healthy", changed: false, nextCheckAt: 10_000 - 900 + 1501 });
    const suspect = stepLiveness(healthy, 1600, HB, 10_000);
    expect(suspect).toMatchObject({ health: "suspect", changed: true, nextCheckAt: 10_000 - 1600 + 2501 });
    expect(stepLiveness(suspect, 2600, HB, 11_000)).toMatchObject({ health: "down", changed: true, recentDowns: [11_000] });
  });

  it("clears suspicion at once when a frame arrives", () => {
    const suspect = stepLiveness(healthy, 1600, HB, 10_000);
    expect(stepLiveness(suspect, 100, HB, 10_500)).toMatchObject({ health: "healthy", reason: "heartbeat resumed" });
  });

  it("needs two fresh checks in a row to come back, and starts over after a silent one", () => {
    let state: Liveness = stepLiveness(healthy, 3000, HB, 10_000);
    state = stepLiveness(state, 200, HB, 11_000);
    expect(state).toMatchObject({ health: "down", goodChecks: 1 });
    state = stepLiveness(state, 1500, HB, 12_000);
    expect(state).toMatchObject({ health: "down", goodChecks: 0 });
    state = stepLiveness(state, 200, HB, 13_000);
    state = stepLiveness(state, 200, HB, 14_000);
    expect(state).toMatchObject({ health: "healthy", goodChecks: 0 });
  });

  it("damps flapping: each recent down adds a required good check", () => {
    let state: Liveness = healthy;
    let now = 100_000;
    for (let flap = 0; flap < 3; flap++) {
      state = stepLiveness(state, 3000, HB, (now += 1000));
      let checks = 0;
      while (state.health === "down") {
        state = stepLiveness(state, 100, HB, (now += 1000));
        checks++;
      }
      expect(checks).toBe(2 + flap);
    }
    // Long after, the history is forgotten.
    state = stepLiveness(state, 3000, HB, (now += 10 * 60_000));
    expect(state.recentDowns).toHaveLength(1);
  });

  it("leaves draining nodes alone", () => {
    expect(stepLiveness({ ...healthy, health: "draining" }, 60_000, HB, 100_000)).toMatchObject({ health: "draining", changed: false });
  });
});
