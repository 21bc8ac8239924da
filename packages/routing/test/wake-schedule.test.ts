import { describe, expect, it } from "vitest";
import { CLOCK_TIMING, WakeSchedule, alarmMustMove, clockAlarmAt, wakeLanes } from "../src";

describe("WakeSchedule", () => {
  it("wakes each name once when due, earliest first asked wins for wakeBy", () => {
    const s = new WakeSchedule();
    s.wakeBy("fra", 1000);
    s.wakeBy("fra", 2000); // a later ask does not push the sweep back
    s.wakeBy("ams", 1500);
    expect(s.earliest()).toBe(1000);
    expect(s.takeDue(999)).toEqual([]);
    expect(s.takeDue(1000)).toEqual(["fra"]);
    expect(s.earliest()).toBe(1500);
    expect(s.takeDue(5000)).toEqual(["ams"]);
    expect(s.earliest()).toBeNull();
  });

  it("takes a hub's own answer after a sweep as its next deadline, later or none", () => {
    const s = new WakeSchedule();
    s.wakeBy("fra", 1000);
    s.set("fra", 4000);
    expect(s.earliest()).toBe(4000);
    s.set("fra", null);
    expect(s.size).toBe(0);
    s.set("fra", Number.POSITIVE_INFINITY);
    expect(s.size).toBe(0);
  });
});

describe("the clock's alarm", () => {
  it("fires no more often than once a tick, and not at all with nobody waiting", () => {
    expect(clockAlarmAt(null, 0)).toBeNull();
    expect(clockAlarmAt(10_000, 0)).toBe(10_000);
    expect(clockAlarmAt(100, 50)).toBe(50 + CLOCK_TIMING.tickMs);
  });

  it("moves only when the wanted time is earlier by more than a tick", () => {
    expect(alarmMustMove(null, 5000)).toBe(true);
    expect(alarmMustMove(5000, null)).toBe(false);
    expect(alarmMustMove(5000, 6000)).toBe(false);
    expect(alarmMustMove(5000, 5000 - CLOCK_TIMING.tickMs + 1)).toBe(false);
    expect(alarmMustMove(5000, 5000 - CLOCK_TIMING.tickMs - 1)).toBe(true);
  });
});

describe("wakeLanes", () => {
  it("keeps a few wake-ups in flight, and opens more lanes when many hubs are due at once", () => {
    expect(wakeLanes(0)).toBe(0);
    expect(wakeLanes(2)).toBe(2);
    expect(wakeLanes(29)).toBe(CLOCK_TIMING.wakesInFlight);
    // A thousand hubs due in one tick: each lane wakes about wakesPerLane of them in a row.
    const lanes = wakeLanes(1000);
    expect(lanes).toBe(Math.ceil(1000 / CLOCK_TIMING.wakesPerLane));
    expect(Math.ceil(1000 / lanes)).toBeLessThanOrEqual(CLOCK_TIMING.wakesPerLane);
  });
});

