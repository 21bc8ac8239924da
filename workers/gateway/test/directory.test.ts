import type { NodeUpdate } from "@meridian/protocol";
import { env, evictDurableObject, listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CHANGE_LOG_LIMIT } from "@meridian/routing";
import type { Directory, DirectoryAnswer } from "../src/directory";
import type { RegionHub } from "../src/hub/region-hub";
import { eventually, joinNode, nodeRecord, QUIET_REGION, silenceNode } from "./helpers";

/**
 * The Directory called directly, each test on its own instance (its own name, so its own
 * storage and epoch) rather than the gateway's "global" one that the other tests feed.
 */
const freshDirectory = () => env.DIRECTORY.getByName(`directory-test-${crypto.randomUUID()}`);


const record = nodeRecord;

const gone = (id: string, seq: number): NodeUpdate => ({ id, region: QUIET_REGION, gone: true, seq });

const ids = (answer: DirectoryAnswer): string[] => (answer.kind === "full" ? answer.nodes : answer.updates).map((u) => u.id).sort();

function full(answer: DirectoryAnswer): Extract<DirectoryAnswer, { kind: "full" }> {
  if (answer.kind !== "full") throw new Error(`expected a full answer, got ${JSON.stringify(answer)}`);
  return answer;
}

function delta(answer: DirectoryAnswer): Extract<DirectoryAnswer, { kind: "delta" }> {
  if (answer.kind !== "delta") throw new Error(`expected a delta, got kind ${answer.kind}`);
  return answer;
}

describe("Directory.snapshotSince: epochs", () => {
  it("answers a caller of another epoch, or of none, with the whole fleet; each instance is its own epoch", async () => {
    const stub = freshDirectory();
    const first = await runInDurableObject(stub, (directory: Directory) => {
      expect(directory.applyUpdates([record("a", 1), record("b", 1)])).toBe(2);
      return full(directory.snapshotSince(null, 0));
    });
    expect(first).toMatchObject({ version: 2 });
    expect(ids(first)).toEqual(["a", "b"]);

    await runInDurableObject(stub, (directory: Directory) => {
      // The same epoch at the latest version: nothing changed.
      expect(delta(directory.snapshotSince(first.epoch, first.version)).updates).toEqual([]);
      // Another epoch's version 2 means nothing here: the whole fleet again.
      const other = full(directory.snapshotSince(crypto.randomUUID(), first.version));
      expect(other.epoch).toBe(first.epoch);
      expect(ids(other)).toEqual(["a", "b"]);
    });

    // Another Directory object has an epoch of its own.
    const second = full(await runInDurableObject(freshDirectory(), (directory: Directory) => directory.snapshotSince(first.epoch, 0)));
    expect(second.epoch).not.toBe(first.epoch);
    expect(second).toMatchObject({ version: 0, nodes: [] });

    // A restart is a new epoch, and records from before it are not served (no hub holds their sockets).
    await evictDurableObject(stub);
    const restarted = full(await runInDurableObject(stub, (directory: Directory) => directory.snapshotSince(first.epoch, first.version)));
    expect(restarted.epoch).not.toBe(first.epoch);
    expect(restarted).toMatchObject({ version: 0, nodes: [] });

    const listed = (await listDurableObjectIds(env.DIRECTORY)).map((id) => id.toString());
    expect(listed).toContain(stub.id.toString());
  });
});

describe("Directory.snapshotSince: deltas", () => {
  it("sends each node changed after a version once, in its latest state, and leaves as gone", async () => {
    await runInDurableObject(freshDirectory(), (directory: Directory) => {
      const { epoch } = directory.snapshotSince(null, 0);
      directory.applyUpdates([record("a", 1), record("b", 1), record("c", 1)]);
      directory.applyUpdates([record("a", 2, { load: 0.5 })]);
      directory.applyUpdates([gone("b", 2)]);
      expect(directory.applyUpdates([record("a", 3, { load: 0.75 })])).toBe(6);

      const since3 = delta(directory.snapshotSince(epoch, 3));
      expect(since3.version).toBe(6);
      const updates = [...since3.updates].sort((x, y) => x.id.localeCompare(y.id));
      expect(updates).toHaveLength(2);
      expect(updates[0]).toMatchObject({ id: "a", load: 0.75, seq: 3 });
      expect(updates[1]).toMatchObject({ id: "b", gone: true });

      // From the start of this epoch: every node that ever changed, c included.
      expect(ids(delta(directory.snapshotSince(epoch, 0)))).toEqual(["a", "b", "c"]);
      expect(delta(directory.snapshotSince(epoch, 6)).updates).toEqual([]);
      // A version this instance never reached (a caller ahead of it) gets the whole fleet.
      expect(ids(full(directory.snapshotSince(epoch, 7)))).toEqual(["a", "c"]);
    });
  });

  it("ignores a stale or repeated record of a node (lower or equal seq)", async () => {
    await runInDurableObject(freshDirectory(), (directory: Directory) => {
      expect(directory.applyUpdates([record("a", 5, { load: 0.5 })])).toBe(1);
      expect(directory.applyUpdates([record("a", 4, { load: 0.9 }), record("a", 5, { load: 0.9 }), gone("a", 3)])).toBe(1);
      const snapshot = full(directory.snapshotSince(null, 0));
      expect(snapshot.nodes).toEqual([expect.objectContaining({ id: "a", seq: 5, load: 0.5 })]);
    });
  });

  it("keeps out a record older than the node's leave (a late answer from before it), but takes a newer one", async () => {
    await runInDurableObject(freshDirectory(), (directory: Directory) => {
      const { epoch } = directory.snapshotSince(null, 0);
      directory.applyUpdates([record("a", 5)]);
      expect(directory.applyUpdates([gone("a", 6)])).toBe(2);
      // Late records at or before the leave, and a leave of a node never seen, change nothing.
      expect(directory.applyUpdates([record("a", 6), record("a", 4), gone("never-seen", 1)])).toBe(2);
      expect(full(directory.snapshotSince(null, 0)).nodes).toEqual([]);
      // The node comes back with a newer record.
      expect(directory.applyUpdates([record("a", 7)])).toBe(3);
      expect(delta(directory.snapshotSince(epoch, 2)).updates).toEqual([expect.objectContaining({ id: "a", seq: 7 })]);
    });
  });

  it("carries the latest document versions in full and delta answers, across a restart", async () => {
    const stub = freshDirectory();
    const epoch = await runInDurableObject(stub, (directory: Directory) => {
      directory.setDocumentVersion("policy", 3);
      directory.setDocumentVersion("carriers", 2);
      // An older version arriving late does not win.
      directory.setDocumentVersion("policy", 1);
      directory.applyUpdates([record("a", 1)]);
      const answer = full(directory.snapshotSince(null, 0));
      expect(answer).toMatchObject({ policyVersion: 3, carriersVersion: 2 });
      expect(delta(directory.snapshotSince(answer.epoch, 0))).toMatchObject({ policyVersion: 3, carriersVersion: 2 });
      return answer.epoch;
    });
    await evictDurableObject(stub);
    const restarted = full(await runInDurableObject(stub, (directory: Directory) => directory.snapshotSince(epoch, 1)));
    expect(restarted).toMatchObject({ policyVersion: 3, carriersVersion: 2 });
    expect(restarted.epoch).not.toBe(epoch);
  });

  it("answers a version older than its change log with the whole fleet", async () => {
    await runInDurableObject(freshDirectory(), (directory: Directory) => {
      const { epoch } = directory.snapshotSince(null, 0);
      // Enough changes (of 1,000 nodes) to make the log trim itself to its last CHANGE_LOG_LIMIT entries.
      const total = 2 * CHANGE_LOG_LIMIT + 1;
      expect(directory.applyUpdates(Array.from({ length: total }, (_, i) => record(`n${i % 1000}`, i + 1)))).toBe(total);
      const oldestKept = total - CHANGE_LOG_LIMIT + 1;
      // A caller at the version just before the oldest kept change still gets a delta...
      expect(delta(directory.snapshotSince(epoch, oldestKept - 1)).updates).toHaveLength(1000);
      // ...one further back cannot be told what it missed: the whole fleet.
      expect(full(directory.snapshotSince(epoch, oldestKept - 2)).nodes).toHaveLength(1000);
      expect(full(directory.snapshotSince(epoch, 1)).version).toBe(total);
    });
  });
});

describe("Directory recovery after a restart", () => {
  it("asks the hubs of the regions it has seen for their live sockets: a connected node is back, one whose socket is gone is not", async () => {
    const region = "prg";
    const hub = env.REGION_HUB.getByName(region);
    const stays = await joinNode("prg-dir-stays", region);
    const leaves = await joinNode("prg-dir-leaves", region);
    const silent = await joinNode("prg-dir-silent", region, {}, {}, false);
    const liveIds = () => runInDurableObject(hub, (instance: RegionHub) => instance.liveRecords().map((r) => r.id));

    // The Directory under test learns the region's nodes as a hub's push would tell it.
    const stub = freshDirectory();
    const records = await runInDurableObject(hub, (instance: RegionHub) => instance.liveRecords());
    const before = await runInDurableObject(stub, (directory: Directory) => {
      directory.applyUpdates(records);
      return full(directory.snapshotSince(null, 0));
    });
    expect(ids(before)).toEqual(["prg-dir-leaves", "prg-dir-silent", "prg-dir-stays"]);

    // One socket goes away (the hub tells the gateway's Directory, not this one)...
    leaves.ws.close(1000, "bye");
    await eventually(async () => expect(await liveIds()).not.toContain("prg-dir-leaves"));
    // ...and one node falls silent: aged as if frozen for 10 s, then the hub's sweep runs.
    await silenceNode(region, "prg-dir-silent");
    expect(await runDurableObjectAlarm(hub)).toBe(true);
    await eventually(async () => {
      const silentRecord = await runInDurableObject(hub, (instance: RegionHub) => instance.liveRecords().find((r) => r.id === "prg-dir-silent"));
      expect(silentRecord?.health).toBe("down");
    });
    // Before its restart this Directory still holds what it was told.
    expect(ids(full(await runInDurableObject(stub, (directory: Directory) => directory.snapshotSince(null, 0))))).toContain("prg-dir-leaves");

    await evictDurableObject(stub);
    const after = await eventually(async () => {
      const answer = full(await runInDurableObject(stub, (directory: Directory) => directory.snapshotSince(null, 0)));
      expect(ids(answer)).toEqual(["prg-dir-silent", "prg-dir-stays"]);
      return answer;
    });
    expect(after.epoch).not.toBe(before.epoch);
    // The hub's view now, not the record from before the restart.
    expect(after.nodes.find((n) => n.id === "prg-dir-silent")).toMatchObject({ health: "down" });
    expect(after.nodes.find((n) => n.id === "prg-dir-stays")).toMatchObject({ health: "healthy", region });

    const hubs = (await listDurableObjectIds(env.REGION_HUB)).map((id) => id.toString());
    expect(hubs).toContain(hub.id.toString());
    stays.ws.close(1000, "done");
    silent.ws.close(1000, "done");
  });
});
