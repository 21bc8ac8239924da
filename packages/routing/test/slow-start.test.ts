import { describe, expect, it } from "vitest";
import { FleetIndex, SLOW_START_MS, SLOW_START_PENALTY_MS, route, slowStartPenaltyMs } from "../src";
import { node } from "./fixtures";

const TOKYO = { lat: 35.6762, lon: 139.6503 };
const RETURNED_AT = 1_000_000;

describe("slow start", () => {
  it("starts a returned node at the full penalty and ramps it down to nothing", () => {
    expect(slowStartPenaltyMs(RETURNED_AT, RETURNED_AT)).toBe(SLOW_START_PENALTY_MS);
    expect(slowStartPenaltyMs(RETURNED_AT, RETURNED_AT + SLOW_START_MS / 2)).toBeCloseTo(SLOW_START_PENALTY_MS / 2);
    expect(slowStartPenaltyMs(RETURNED_AT, RETURNED_AT + SLOW_START_MS)).toBe(0);
    expect(slowStartPenaltyMs(undefined, RETURNED_AT)).toBe(0);
    // A decision clock behind the hub's treats the node as just returned, never as bonus.
    expect(slowStartPenaltyMs(RETURNED_AT, RETURNED_AT - 5_000)).toBe(SLOW_START_PENALTY_MS);
  });

  it("lets a returned node win back its clients gradually, nearest advantage first", () => {
    // Tokyo clients: nrt is nearest; kix (Osaka) a few ms farther; icn (Seoul) farther still.
    const fleet = new FleetIndex([node("nrt-1", "nrt", { returnedAt: RETURNED_AT }), node("kix-1", "kix"), node("icn-1", "icn")]);
    const primaryAt = (now: number) => route(fleet, { client: TOKYO, requirements: {}, now }).candidates.map((c) => c.node.id);
    expect(primaryAt(RETURNED_AT)[0]).toBe("kix-1");
    expect(primaryAt(RETURNED_AT)).toContain("nrt-1"); // still a fallback: slow start is not ejection
    expect(primaryAt(RETURNED_AT + SLOW_START_MS)[0]).toBe("nrt-1");
    // Somewhere in the window the ranking flips, once, and stays flipped.
    const primaries = Array.from({ length: 31 }, (_, s) => primaryAt(RETURNED_AT + (s * SLOW_START_MS) / 30)[0]);
    const flip = primaries.indexOf("nrt-1");
    expect(flip).toBeGreaterThan(0);
    expect(primaries.slice(flip).every((id) => id === "nrt-1")).toBe(true);
  });

  it("applies only to healthy nodes (suspect nodes already carry their own penalty)", () => {
    const suspect = new FleetIndex([node("nrt-1", "nrt", { health: "suspect", returnedAt: RETURNED_AT })]);
    const healthy = new FleetIndex([node("nrt-1", "nrt", { returnedAt: RETURNED_AT })]);
    const scoreOf = (index: FleetIndex) => route(index, { client: TOKYO, requirements: {}, now: RETURNED_AT }).candidates[0]?.score ?? Number.NaN;
    expect(scoreOf(suspect)).toBeCloseTo(scoreOf(healthy));
  });
});
