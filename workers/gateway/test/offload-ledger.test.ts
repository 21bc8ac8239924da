import { env, evictDurableObject, listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { OffloadLedger, UsageDelta } from "../src/offload-ledger";

/** A ledger name no other test uses: each test gets an object, and so storage, of its own. */
const ledgerName = () => `ledger-test-${crypto.randomUUID()}`;
const freshLedger = () => env.OFFLOAD_LEDGER.getByName(ledgerName());

const HOUR_MS = 3600_000;
/** A fixed hour, so range queries are exact: 2026-11-25T10:00:00Z. */
const HOUR = Date.UTC(2026, 10, 25, 10);

function delta(over: Partial<UsageDelta> = {}): UsageDelta {
  return { hour: HOUR, node: "hs-1", region: "lhr", route: "offload", requests: 1, bytes: 100, aborted: 0, flagged: 0, creditCapBytes: null, ...over };
}

describe("OffloadLedger.record", () => {
  it("applies a batch once: a retried id changes nothing, even after a restart of the object", async () => {
    const stub = freshLedger();
    await runInDurableObject(stub, (ledger: OffloadLedger) => {
      const batch = { id: "batch-1", deltas: [delta({ requests: 2, bytes: 900 })] };
      expect(ledger.record(batch)).toEqual({ applied: true });
      expect(ledger.record(batch)).toEqual({ applied: false });
      // The same id with other contents is still the same write (a retry), not a new one.
      expect(ledger.record({ id: "batch-1", deltas: [delta({ requests: 50, bytes: 50_000 })] })).toEqual({ applied: false });
      expect(ledger.usage(HOUR, HOUR + HOUR_MS).totals.offload).toMatchObject({ requests: 2, bytes: 900 });
    });
    await evictDurableObject(stub);
    await runInDurableObject(stub, (ledger: OffloadLedger) => {
      expect(ledger.record({ id: "batch-1", deltas: [delta({ requests: 2, bytes: 900 })] })).toEqual({ applied: false });
      expect(ledger.record({ id: "batch-2", deltas: [delta({ requests: 1, bytes: 100 })] })).toEqual({ applied: true });
      expect(ledger.usage(HOUR, HOUR + HOUR_MS).totals.offload).toMatchObject({ requests: 3, bytes: 1000 });
    });
  });

  it("credits a hotspot up to its hourly cap, summed over its regions, afresh each hour; backbone bytes are never credited", async () => {
    await runInDurableObject(freshLedger(), (ledger: OffloadLedger) => {
      const capped = (over: Partial<UsageDelta>) => delta({ creditCapBytes: 1000, ...over });
      // Each hour has a cap of its own: the next hour's credit (written first) takes none of this one's.
      ledger.record({ id: "b0", deltas: [capped({ bytes: 700, hour: HOUR + HOUR_MS })] });
      ledger.record({ id: "b1", deltas: [capped({ bytes: 600 })] });
      // Same node, same hour, another region: the cap is the node's, not the row's.
      ledger.record({ id: "b2", deltas: [capped({ bytes: 600, region: "man" })] });
      ledger.record({ id: "b3", deltas: [capped({ bytes: 300 })] });
      // Another node has its own cap; an uncapped node is credited everything.
      ledger.record({ id: "b5", deltas: [capped({ node: "hs-2", bytes: 1500 }), delta({ node: "hs-3", bytes: 5000 })] });
      ledger.record({ id: "b6", deltas: [delta({ node: "bb-1", route: "backbone", bytes: 4000 })] });

      const { rows, totals } = ledger.usage(HOUR, HOUR + 2 * HOUR_MS);
      const credited = rows.map((r) => [r.hour.slice(11, 13), r.node, r.region, r.route, r.bytes, r.creditedBytes]);
      expect(credited).toEqual([
        ["10", "bb-1", "lhr", "backbone", 4000, 0],
        ["10", "hs-1", "lhr", "offload", 900, 600],
        ["10", "hs-1", "man", "offload", 600, 400],
        ["10", "hs-2", "lhr", "offload", 1500, 1000],
        ["10", "hs-3", "lhr", "offload", 5000, 5000],
        ["11", "hs-1", "lhr", "offload", 700, 700],
      ]);
      expect(totals.offload).toMatchObject({ bytes: 8700, creditedBytes: 7700 });
      expect(totals.backbone).toMatchObject({ requests: 1, bytes: 4000, creditedBytes: 0 });
    });
  });

  it("counts aborted and flagged requests per row and in the totals per route", async () => {
    await runInDurableObject(freshLedger(), (ledger: OffloadLedger) => {
      ledger.record({ id: "b1", deltas: [delta({ requests: 4, aborted: 1, flagged: 2 }), delta({ route: "backbone", node: "bb-1", requests: 3, aborted: 2 })] });
      ledger.record({ id: "b2", deltas: [delta({ requests: 2, aborted: 1, flagged: 0 })] });
      const { rows, totals } = ledger.usage(HOUR, HOUR + HOUR_MS);
      expect(rows.find((r) => r.node === "hs-1")).toMatchObject({ requests: 6, abortedRequests: 2, flaggedRequests: 2 });
      expect(totals.offload).toMatchObject({ requests: 6, abortedRequests: 2, flaggedRequests: 2 });
      expect(totals.backbone).toMatchObject({ requests: 3, abortedRequests: 2, flaggedRequests: 0 });
    });
  });
});

describe("OffloadLedger.usage", () => {
  it("answers hours in [from, to), in settlement order, with ISO hours", async () => {
    await runInDurableObject(freshLedger(), (ledger: OffloadLedger) => {
      const hours = [HOUR - HOUR_MS, HOUR, HOUR + HOUR_MS, HOUR + 2 * HOUR_MS];
      // Written out of order, to check the order of the answer.
      ledger.record({ id: "b1", deltas: [...hours].reverse().flatMap((hour) => [delta({ hour, node: "hs-2" }), delta({ hour, node: "hs-1" })]) });

      const { rows, totals } = ledger.usage(HOUR, HOUR + 2 * HOUR_MS);
      expect(rows.map((r) => `${r.hour} ${r.node}`)).toEqual([
        "2026-11-25T10:00:00.000Z hs-1",
        "2026-11-25T10:00:00.000Z hs-2",
        "2026-11-25T11:00:00.000Z hs-1",
        "2026-11-25T11:00:00.000Z hs-2",
      ]);
      expect(totals.offload.requests).toBe(4);
      expect(ledger.usage(HOUR + 3 * HOUR_MS, HOUR + 4 * HOUR_MS).rows).toEqual([]);
      expect(ledger.usage(HOUR - HOUR_MS, HOUR + 3 * HOUR_MS).rows).toHaveLength(8);
    });
  });

  it("keeps its counts across a restart of the object, and keeps no alarm", async () => {
    const name = ledgerName();
    const stub = env.OFFLOAD_LEDGER.getByName(name);
    expect(await stub.record({ id: "b1", deltas: [delta({ requests: 5, bytes: 500, creditCapBytes: 300 })] })).toEqual({ applied: true });
    await evictDurableObject(stub);
    // A new stub by the same name reaches the new instance over the same storage.
    const again = env.OFFLOAD_LEDGER.getByName(name);
    expect(await again.record({ id: "b1", deltas: [delta({ requests: 5, bytes: 500 })] })).toEqual({ applied: false });
    expect(await again.record({ id: "b2", deltas: [delta({ requests: 1, bytes: 100, creditCapBytes: 300 })] })).toEqual({ applied: true });
    const { totals } = await again.usage(HOUR, HOUR + HOUR_MS);
    // The cap holds across the restart: credit already given is read back from storage.
    expect(totals.offload).toMatchObject({ requests: 6, bytes: 600, creditedBytes: 300 });
    // The ledger is written by requests only: nothing is scheduled.
    expect(await runDurableObjectAlarm(again)).toBe(false);
    expect((await listDurableObjectIds(env.OFFLOAD_LEDGER)).map((id) => id.toString())).toContain(again.id.toString());
  });
});
