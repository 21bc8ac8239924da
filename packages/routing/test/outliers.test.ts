import { describe, expect, it } from "vitest";
import { DEFAULT_OUTLIER_CONFIG, OutlierDetector } from "../src";

function detector() {
  let now = 1_000_000;
  const d = new OutlierDetector(DEFAULT_OUTLIER_CONFIG, () => now);
  return { d, advance: (ms: number) => (now += ms) };
}

describe("OutlierDetector", () => {
  it("ejects after 3 consecutive failures, and a success in between resets the count", () => {
    const { d } = detector();
    d.recordFailure("a", "nrt", 4, "connect");
    d.recordFailure("a", "nrt", 4, "connect");
    d.recordSuccess("a");
    d.recordFailure("a", "nrt", 4, "connect");
    d.recordFailure("a", "nrt", 4, "connect");
    expect(d.isEjected("a")).toBe(false);
    expect(d.recordFailure("a", "nrt", 4, "connect")).toMatchObject({ id: "a", ejections: 1 });
    expect(d.isEjected("a")).toBe(true);
    expect(d.active).toBe(true);
  });

  it("doubles the ejection time on each ejection up to the cap, and returns the node afterwards", () => {
    let now = 1_000_000;
    const d = new OutlierDetector(DEFAULT_OUTLIER_CONFIG, () => now);
    const durations: number[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3; i++) d.recordFailure("a", "nrt", 10, "5xx");
      const ejection = d.ejected()[0];
      if (ejection === undefined) throw new Error("not ejected");
      durations.push(ejection.until - now);
      now = ejection.until; // served its time
    }
    expect(durations).toEqual([5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
    expect(d.isEjected("a")).toBe(false);
    expect(d.active).toBe(false);
  });

  it("never ejects more than half of a region", () => {
    const { d } = detector();
    for (const id of ["a", "b", "c"]) for (let i = 0; i < 3; i++) d.recordFailure(id, "fra", 4, "connect");
    expect(d.ejected().map((e) => e.id)).toEqual(["a", "b"]);
    // A one-node region keeps its node: ejecting it would leave nothing.
    for (let i = 0; i < 5; i++) d.recordFailure("solo", "syd", 1, "connect");
    expect(d.isEjected("solo")).toBe(false);
  });
});
