import { describe, expect, it } from "vitest";
import { FEED_TIMING, FleetLog, coloEntryReplaces, coloEntryServes, coloLease, refreshAction, streamFrameDue, type ColoEntry } from "../src";
import { node } from "./fixtures";

describe("FleetLog", () => {
  it("answers a replica with deltas that bring it to the primary's state, and a full copy when it cannot", () => {
    const primary = new FleetLog("e1");
    primary.applyUpdates([node("a", "fra", { seq: 1 }), node("b", "nrt", { seq: 1 })]);
    const replica = new FleetLog("none");
    const first = primary.since(null, 0);
    expect(first.kind).toBe("full");
    replica.applyAnswer(first);
    primary.applyUpdates([node("a", "fra", { seq: 2, load: 0.5 }), { id: "b", region: "nrt", gone: true, seq: 2 }, node("c", "ams", { seq: 1 })]);
    // A stale update (seq not higher) changes nothing.
    expect(primary.applyUpdates([node("c", "ams", { seq: 1, load: 0.9 })])).toBe(5);
    const delta = primary.since(replica.epoch, replica.version);
    expect(delta.kind === "delta" && delta.updates.map((u) => u.id).sort()).toEqual(["a", "b", "c"]);
    replica.applyAnswer(delta);
    expect(replica.version).toBe(primary.version);
    // An isolate asking the replica gets the same state as asking the primary.
    const viaReplica = replica.since(null, 0);
    const viaPrimary = primary.since(null, 0);
    expect(viaReplica.kind === "full" && viaReplica.nodes.sort((x, y) => x.id.localeCompare(y.id))).toEqual(viaPrimary.kind === "full" && viaPrimary.nodes.sort((x, y) => x.id.localeCompare(y.id)));
    // A version from before the replica's first full copy is not covered by its log: full copy.
    expect(replica.since("e1", 1).kind).toBe("full");
    expect(replica.since("e1", 2).kind).toBe("delta");
    expect(replica.since("other-epoch", 5).kind).toBe("full");
  });
});

describe("feed timing", () => {
  it("serves fresh copies, refreshes in the background after isolateRefreshMs, waits when cold or idle", () => {
    expect(refreshAction({ loaded: false, fetchedAt: 0, refreshing: false }, 0)).toBe("wait");
    expect(refreshAction({ loaded: true, fetchedAt: 0, refreshing: false }, FEED_TIMING.isolateRefreshMs)).toBe("serve");
    expect(refreshAction({ loaded: true, fetchedAt: 0, refreshing: false }, FEED_TIMING.isolateRefreshMs + 1)).toBe("serve-and-refresh");
    expect(refreshAction({ loaded: true, fetchedAt: 0, refreshing: true }, FEED_TIMING.isolateRefreshMs + 1)).toBe("serve");
    expect(refreshAction({ loaded: true, fetchedAt: 0, refreshing: true }, FEED_TIMING.isolateMaxAgeMs + 1)).toBe("wait");
    const head: ColoEntry = { answer: { kind: "delta", epoch: "e", version: 10, policyVersion: 1, carriersVersion: 0, updates: [] }, base: 7, storedAt: 0 };
    expect(coloEntryServes(head, { epoch: "e", version: 7 }, FEED_TIMING.coloCacheTtlMs)).toBe(true);
    expect(coloEntryServes(head, { epoch: "e", version: 6 }, 0)).toBe(false);
    expect(coloEntryServes(head, { epoch: "other", version: 8 }, 0)).toBe(false);
    expect(coloEntryServes(head, { epoch: "e", version: 8 }, FEED_TIMING.coloCacheTtlMs + 1)).toBe(false);
    // Leased by an isolate that is fetching: the others keep it a little longer.
    const leased = coloLease(head, FEED_TIMING.coloCacheTtlMs + 1);
    expect(coloEntryServes(leased, { epoch: "e", version: 8 }, FEED_TIMING.coloCacheTtlMs + 2)).toBe(true);
    expect(coloEntryServes(leased, { epoch: "e", version: 8 }, FEED_TIMING.coloCacheTtlMs + 1 + FEED_TIMING.coloLeaseMs)).toBe(false);
    const full: ColoEntry = { answer: { kind: "full", epoch: "e", version: 10, policyVersion: 1, carriersVersion: 0, nodes: [] }, base: -1, storedAt: 0 };
    expect(coloEntryServes(full, { epoch: null, version: 0 }, 0)).toBe(true);
    expect(coloEntryReplaces(head, { ...head, answer: { ...head.answer, version: 9 }, storedAt: 5 })).toBe(false);
    expect(coloEntryReplaces(head, { ...head, answer: { ...head.answer, version: 11 }, storedAt: 5 })).toBe(true);
    expect(coloEntryReplaces(undefined, head)).toBe(true);
    expect(streamFrameDue(0, FEED_TIMING.streamMs, 3, 4)).toBe(true);
    expect(streamFrameDue(0, FEED_TIMING.streamMs, 4, 4)).toBe(false);
    expect(streamFrameDue(0, FEED_TIMING.streamMs - 1, 3, 4)).toBe(false);
  });
});
