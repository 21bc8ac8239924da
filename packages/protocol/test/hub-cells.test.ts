import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_HUB_CELL_CAPACITY, HUB_SOCKET_LIMIT, MAX_CELLS_PER_REGION, assignCell, hubName, hubNamesOf, parseCellCapacity, parseHubName } from "../src/hub-cells";

describe("hub cell names", () => {
  it("keeps the region's own name for cell 0 and adds /k for the others", () => {
    expect(hubName("lhr", 0)).toBe("lhr");
    expect(hubName("lhr", 1)).toBe("lhr/1");
    expect(hubName("lhr", 7)).toBe("lhr/7");
    expect(hubNamesOf("fra", 3)).toEqual(["fra", "fra/1", "fra/2"]);
    expect(hubNamesOf("fra", 0)).toEqual(["fra"]);
    expect(() => hubName("lhr", -1)).toThrow(RangeError);
    expect(() => hubName("lhr", 1.5)).toThrow(RangeError);
  });

  it("parses every name it makes back to the same region and cell", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), fc.nat({ max: 100_000 }), (region, cell) => {
        expect(parseHubName(hubName(region, cell))).toEqual({ region, cell });
      }),
    );
  });

  it("refuses names that would be a second name for a hub", () => {
    for (const name of ["", "lhr/", "lhr/0", "lhr/01", "/1", "lhr/-1", "lhr/1.5", "lhr/x", "lhr/1/2", "lhr/99999999999999999999"]) {
      expect(parseHubName(name), name).toBeNull();
    }
  });
});

describe("cell capacity from configuration", () => {
  it("takes a positive integer up to the socket limit, and a default with headroom below it otherwise", () => {
    expect(DEFAULT_HUB_CELL_CAPACITY).toBeLessThan(HUB_SOCKET_LIMIT);
    expect(parseCellCapacity("3")).toBe(3);
    expect(parseCellCapacity("32768")).toBe(HUB_SOCKET_LIMIT);
    expect(parseCellCapacity(" 2 ")).toBe(2);
    expect(parseCellCapacity(undefined)).toBe(DEFAULT_HUB_CELL_CAPACITY);
    for (const raw of ["", "0", "-1", "1.5", "abc", "32769", "3e2"]) expect(parseCellCapacity(raw), raw).toBe(DEFAULT_HUB_CELL_CAPACITY);
  });
});

describe("cell assignment", () => {
  it("fills cells in order: with a capacity of 3 the 4th node of a region lands in cell 1", () => {
    const counts = new Map<number, number>();
    const cells: number[] = [];
    for (let i = 0; i < 7; i++) {
      const cell = assignCell(counts, 3);
      if (cell === null) throw new Error("no cell");
      cells.push(cell);
      counts.set(cell, (counts.get(cell) ?? 0) + 1);
    }
    expect(cells).toEqual([0, 0, 0, 1, 1, 1, 2]);
  });

  it("keeps a node's cell while it has room, and moves it to the lowest cell with room otherwise", () => {
    expect(assignCell(new Map([[0, 1], [1, 2]]), 3, 1)).toBe(1);
    expect(assignCell(new Map([[0, 1], [1, 3]]), 3, 1)).toBe(0);
    // A freed place in cell 0 is reused before cell 2 is opened.
    expect(assignCell(new Map([[0, 2], [1, 3]]), 3)).toBe(0);
  });

  it("answers null when every allowed cell is full, and refuses a capacity below 1", () => {
    const full = new Map(Array.from({ length: MAX_CELLS_PER_REGION }, (_, k) => [k, 1] as const));
    expect(assignCell(full, 1)).toBeNull();
    expect(() => assignCell(new Map(), 0)).toThrow(RangeError);
  });

  it("never puts more nodes in a cell than its capacity, and never moves a node that stays", () => {
    // Random enrollments, re-enrollments and revocations in one region, as the registry applies them.
    const op = fc.oneof(fc.record({ kind: fc.constant("enroll" as const), node: fc.nat({ max: 30 }) }), fc.record({ kind: fc.constant("revoke" as const), node: fc.nat({ max: 30 }) }));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 200 }), (capacity, ops) => {
        const cellOf = new Map<number, number>();
        const counts = () => {
          const c = new Map<number, number>();
          for (const cell of cellOf.values()) c.set(cell, (c.get(cell) ?? 0) + 1);
          return c;
        };
        for (const { kind, node } of ops) {
          const before = cellOf.get(node);
          cellOf.delete(node);
          if (kind === "revoke") continue;
          const cell = assignCell(counts(), capacity, before ?? null);
          if (cell === null) throw new Error("no cell");
          // Its own place was freed above, so its old cell always has room for it again.
          if (before !== undefined) expect(cell).toBe(before);
          cellOf.set(node, cell);
          for (const n of counts().values()) expect(n).toBeLessThanOrEqual(capacity);
        }
        // Cell k opens only when cells 0..k-1 are full, so with at most 31 nodes no cell past
        // what a perfect packing of 31 needs is ever used.
        const highest = Math.max(-1, ...cellOf.values());
        expect(highest + 1).toBeLessThanOrEqual(Math.ceil(31 / capacity));
      }),
    );
  });
});
