import { decodeFleetAnswer, encodeFleetAnswer, type FleetAnswer } from "@meridian/protocol";
import { CHANGE_LOG_LIMIT, FleetLog } from "@meridian/routing";
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Directory } from "../src/directory";
import type { DirectoryReplica } from "../src/directory-replica";
import { directory, directoryReplica } from "../src/durable";
import { FleetCache, headHeaders } from "../src/fleet-cache";
import { eventually, nodeRecord } from "./helpers";

/**
 * The fan-out tree on the worker side: the primary Directory's stream to DirectoryReplica
 * objects, and an isolate's FleetCache reading the colo head (Cache API) before its replica.
 * Each test uses replicas of its own name, so the primary streams to them alone among this
 * file's objects; node ids are unique per test.
 */

const record = nodeRecord;

const uid = () => crypto.randomUUID().slice(0, 8);
const replicaName = () => `replica-test-${uid()}`;
const idsOf = (answer: FleetAnswer) => (answer.kind === "full" ? answer.nodes : answer.updates).map((n) => n.id).sort();
const feedOf = async (name: string, epoch: string | null, version: number) => decodeFleetAnswer(await directoryReplica(env, name).feedSince(epoch, version));
const primaryAnswer = async (epoch: string | null, version: number) => decodeFleetAnswer(await directory(env).feedSince(epoch, version));

describe("DirectoryReplica", () => {
  it("an empty replica pulls a full copy from the primary, then catches up from the primary's frames", async () => {
    const name = replicaName();
    const a = `a-${uid()}`;
    const b = `b-${uid()}`;
    await directory(env).applyUpdates([record(a, 1)]);
    const primary = await primaryAnswer(null, 0);

    // First ask: the replica is empty, so it pulls (since(null, 0)) and answers like the primary.
    const first = await feedOf(name, null, 0);
    expect(first).toMatchObject({ kind: "full", epoch: primary.epoch });
    expect(first.version).toBeGreaterThanOrEqual(primary.version);
    expect(idsOf(first)).toContain(a);

    // A change at the primary reaches the replica as a frame (the primary's alarm), with no pull.
    await directory(env).applyUpdates([record(b, 1), record(a, 2, { load: 0.5 })]);
    await eventually(async () => {
      await runDurableObjectAlarm(directory(env));
      const held = await directoryReplica(env, name).position();
      expect(held.version).toBeGreaterThan(first.version);
    });
    const delta = await feedOf(name, first.epoch, first.version);
    expect(delta.kind).toBe("delta");
    expect(idsOf(delta)).toEqual(expect.arrayContaining([a, b]));
    if (delta.kind === "delta") expect(delta.updates.find((u) => u.id === a)).toMatchObject({ load: 0.5, seq: 2 });

    // The same bytes the primary gives for the same question.
    const fromPrimary = await primaryAnswer(first.epoch, first.version);
    expect(delta.version).toBe(fromPrimary.version);
    expect(idsOf(delta)).toEqual(idsOf(fromPrimary));
  });

  it("takes a delta frame only when it joins onto its copy; a gap is refused and a full copy repairs it", async () => {
    const stub = directoryReplica(env, replicaName());
    const source = new FleetLog("epoch-frames");
    source.applyUpdates([record("f1", 1), record("f2", 1)]);
    const encode = (answer: FleetAnswer) => encodeFleetAnswer(answer);

    // An empty replica refuses a delta (it has nothing to apply it to).
    expect(await stub.applyFrame(0, encode(source.since("epoch-frames", 0)))).toBeNull();
    expect(await stub.applyFrame(null, encode(source.since(null, 0)))).toMatchObject({ epoch: "epoch-frames", version: 2 });

    source.applyUpdates([record("f3", 1)]); // v3
    expect(await stub.applyFrame(2, encode(source.since("epoch-frames", 2)))).toMatchObject({ version: 3 });

    // Frames for v4 are lost; the v5 frame starts at v4: a gap, refused, the copy unchanged.
    source.applyUpdates([record("f4", 1)]);
    source.applyUpdates([record("f1", 2, { health: "down" })]);
    expect(await stub.applyFrame(4, encode(source.since("epoch-frames", 4)))).toBeNull();
    expect(await stub.position()).toMatchObject({ version: 3 });

    // The full copy the primary then sends repairs it.
    expect(await stub.applyFrame(null, encode(source.since(null, 0)))).toMatchObject({ version: 5 });
    const answer = await runInDurableObject(stub, (replica: DirectoryReplica) => replica.position());
    expect(answer).toMatchObject({ epoch: "epoch-frames", version: 5 });
  });

  it("a replica behind the primary's change log gets a full copy", async () => {
    const name = replicaName();
    const first = await feedOf(name, null, 0);
    // More changes than the log keeps, while the replica's position is not advanced (no alarm runs in between).
    const id = `busy-${uid()}`;
    await runInDurableObject(directory(env), (primary: Directory) => {
      for (let seq = 1; seq <= CHANGE_LOG_LIMIT * 2 + 10; seq++) primary.applyUpdates([record(id, seq, { load: (seq % 100) / 100 })]);
    });
    // Over the log: asked since the replica's version, the primary answers with a full copy.
    expect((await primaryAnswer(first.epoch, first.version)).kind).toBe("full");
    await eventually(async () => {
      await runDurableObjectAlarm(directory(env));
      expect((await directoryReplica(env, name).position()).version).toBeGreaterThanOrEqual(first.version + CHANGE_LOG_LIMIT * 2);
    });
    const caughtUp = await feedOf(name, first.epoch, first.version);
    expect(caughtUp.kind).toBe("full");
    expect(idsOf(caughtUp)).toContain(id);
  }, 120_000);

  it("a primary restart (a new epoch) gives every known replica a full copy of the new epoch", async () => {
    const name = replicaName();
    const before = await feedOf(name, null, 0);
    await evictDurableObject(directory(env));
    // Any call starts the primary again; its constructor schedules a round for the replicas it knows.
    const restarted = await primaryAnswer(null, 0);
    expect(restarted.epoch).not.toBe(before.epoch);
    await eventually(async () => {
      await runDurableObjectAlarm(directory(env));
      expect((await directoryReplica(env, name).position()).epoch).toBe(restarted.epoch);
    });
    // An isolate still on the old epoch gets a full copy of the new one.
    const answer = await feedOf(name, before.epoch, before.version);
    expect(answer).toMatchObject({ kind: "full", epoch: restarted.epoch });
  });
});

describe("FleetCache and the colo head", () => {
  /** An env whose replicas throw: a refresh that reaches one fails. */
  const noReplicas = { ...env, DIRECTORY_REPLICA: { getByName: () => ({ feedSince: () => Promise.reject(new Error("the replica was asked")) }) } } as unknown as Env;

  async function putHead(cache: Cache, answer: FleetAnswer, base: number, storedAt: number): Promise<void> {
    await cache.put("https://fleet.meridian.internal/fleet/head", new Response(encodeFleetAnswer(answer), { headers: headHeaders({ answer, base, storedAt }) }));
  }

  it("an isolate that reads a fresh colo head takes it and does not ask the replica", async () => {
    const cache = await caches.open(`fleet-test-${uid()}`);
    const fleet = new FleetCache(async () => cache);
    const epoch = `head-${uid()}`;
    const full: FleetAnswer = { kind: "full", epoch, version: 7, policyVersion: 0, carriersVersion: 0, nodes: [record("head-1", 1)] };
    await putHead(cache, full, -1, Date.now());

    const view = await fleet.get(noReplicas, () => undefined);
    expect(fleet.sources).toEqual({ coloHead: 1, replica: 0 });
    expect(fleet.snapshotVersion).toBe(7);
    expect(view.index.nodes().map((r) => r.id)).toEqual(["head-1"]);

    // The next head, a delta from v7 stored by another isolate of the colo: applied in place.
    const delta: FleetAnswer = { kind: "delta", epoch, version: 9, policyVersion: 0, carriersVersion: 0, updates: [record("head-2", 1)] };
    await putHead(cache, delta, 7, Date.now());
    await fleet.refresh(noReplicas);
    expect(fleet.sources).toEqual({ coloHead: 2, replica: 0 });
    expect(fleet.snapshotVersion).toBe(9);
    expect((await fleet.get(noReplicas, () => undefined)).index.nodes().map((r) => r.id).sort()).toEqual(["head-1", "head-2"]);
  });

  it("an isolate that finds the head stale asks its replica and stores the answer as the colo's new head", async () => {
    const cache = await caches.open(`fleet-test-${uid()}`);
    const stale: FleetAnswer = { kind: "full", epoch: "old-epoch", version: 1, policyVersion: 0, carriersVersion: 0, nodes: [] };
    await putHead(cache, stale, -1, Date.now() - 60_000);
    const fleet = new FleetCache(async () => cache);
    fleet.locate({ lat: 48.2, lon: 16.37 }); // Vienna: the EU replica
    expect(fleet.replicaName).toBe("EU");
    await fleet.get(env, () => undefined);
    expect(fleet.sources).toEqual({ coloHead: 0, replica: 1 });

    // The head is now this isolate's answer: a second isolate of the colo takes it without asking.
    const second = new FleetCache(async () => cache);
    await second.get(noReplicas, () => undefined);
    expect(second.sources).toEqual({ coloHead: 1, replica: 0 });
    expect(second.snapshotVersion).toBe(fleet.snapshotVersion);
  });

  it("an unknown location keeps the default replica, never fails", () => {
    const fleet = new FleetCache(async () => null);
    fleet.locate(null);
    expect(fleet.replicaName).toBe("NA");
  });
});
