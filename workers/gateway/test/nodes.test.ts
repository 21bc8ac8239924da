import { CloseCode, MAX_NODE_FRAME_BYTES } from "@meridian/protocol";
import { CLOCK_TIMING } from "@meridian/routing";
import { SELF, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { LivenessClock } from "../src/hub/liveness-clock";
import type { RegionHub } from "../src/hub/region-hub";
import { BASE, connectNode, enroll, eventually, fleet, hello, joinNode, openNode, silenceNode } from "./helpers";

describe("node connections", () => {
  it("admits a node with a valid credential and lists it in the fleet", async () => {
    const node = await joinNode("fra-node-1", "fra");
    const listed = await eventually(async () => {
      const found = (await fleet()).find((n) => n.id === "fra-node-1");
      expect(found).toMatchObject({ region: "fra", health: "healthy", healthy: true });
      return found;
    });
    expect(listed).toBeDefined();
    node.ws.send(JSON.stringify({ type: "heartbeat", seq: 1, load: 0.5, inFlight: 4, free: 4 }));
    await eventually(async () => expect((await fleet()).find((n) => n.id === "fra-node-1")?.load).toBe(0.5));
    node.ws.close(1000, "done");
    await eventually(async () => expect((await fleet()).some((n) => n.id === "fra-node-1")).toBe(false));
  });

  it("refuses a missing, forged or foreign credential with 401 before upgrading", async () => {
    const none = await SELF.fetch(`${BASE}/nodes/connect`, { headers: { upgrade: "websocket" } });
    expect(none.status).toBe(401);
    const credential = await enroll({ id: "fra-forge", kind: "hotspot", region: "fra", capacity: 4 });
    const [body, signature] = credential.split(".");
    const forgedBody = btoa(JSON.stringify({ v: 1, id: "fra-forge", kind: "gpu", region: "fra", gpu: { class: "b200", vramGb: 192, count: 8 }, capacity: 4, iat: 0, exp: 4e9 }))
      .replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    for (const token of [`${forgedBody}.${signature}`, `${body}.AAAA`, "garbage", "x.y", `${body}.A`]) {
      const res = await SELF.fetch(`${BASE}/nodes/connect`, { headers: { upgrade: "websocket", authorization: `Bearer ${token}` } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_credential");
    }
  });

  it("asks for an upgrade with 426 on a plain GET", async () => {
    const res = await SELF.fetch(`${BASE}/nodes/connect`);
    expect(res.status).toBe(426);
  });

  it("closes with 4403 when the hello claims another identity or better hardware", async () => {
    const credential = await enroll({ id: "sin-4090", kind: "gpu", region: "sin", gpu: { class: "rtx4090", vramGb: 24, count: 1 }, capacity: 4 });
    const other = await openNode(credential);
    other.ws.send(hello("sin-someone-else", { gpu: { class: "rtx4090", vramGb: 24, count: 1 }, capacity: 4 }));
    expect((await other.closed).code).toBe(CloseCode.identityMismatch);
    const upgraded = await openNode(credential);
    upgraded.ws.send(hello("sin-4090", { gpu: { class: "b200", vramGb: 192, count: 1 }, capacity: 4 }));
    expect((await upgraded.closed).code).toBe(CloseCode.identityMismatch);
  });

  it("closes only the offending socket on bad frames; the rest of the fleet keeps working", async () => {
    const good = await joinNode("ams-good", "ams");
    const cases: [string | ArrayBuffer, number][] = [
      ["{not json", CloseCode.invalidMessage],
      [JSON.stringify({ type: "teleport" }), CloseCode.invalidMessage],
      ["x".repeat(MAX_NODE_FRAME_BYTES + 1), CloseCode.frameTooLarge],
      // Fewer characters than the cap, more bytes: the cap is in bytes.
      ["é".repeat(MAX_NODE_FRAME_BYTES / 2 + 1), CloseCode.frameTooLarge],
      [new Uint8Array([1, 2, 3]).buffer, CloseCode.invalidMessage],
    ];
    for (const [i, [frame, code]] of cases.entries()) {
      const bad = await joinNode(`ams-bad-${i}`, "ams");
      bad.ws.send(frame);
      const closed = await bad.closed;
      expect(closed.code).toBe(code);
      expect(closed.reason.length).toBeGreaterThan(0);
    }
    const heartbeatFirst = await openNode(await enroll({ id: "ams-early", kind: "hotspot", region: "ams", capacity: 2 }));
    heartbeatFirst.ws.send(JSON.stringify({ type: "heartbeat", seq: 1, load: 0, inFlight: 0, free: 2 }));
    expect((await heartbeatFirst.closed).code).toBe(CloseCode.invalidMessage);
    good.ws.send(JSON.stringify({ type: "heartbeat", seq: 2, load: 0.25, inFlight: 2, free: 6 }));
    await eventually(async () => expect((await fleet()).find((n) => n.id === "ams-good")).toMatchObject({ healthy: true, load: 0.25 }));
  });

  it("marks a silent node down in the sweep, and back up only after two good checks, in slow start", async () => {
    const node = await joinNode("lhr-quiet", "lhr", {}, {}, false);
    const hub = env.REGION_HUB.getByName("lhr");
    // Age the node's last frame as if it had been frozen for 10 s, then run the sweep.
    await silenceNode("lhr", "lhr-quiet");
    expect(await runDurableObjectAlarm(hub)).toBe(true);
    await eventually(async () => expect((await fleet()).find((n) => n.id === "lhr-quiet")?.health).toBe("down"));
    // Each check must come after the hub has the frame, or it is a silent check (count restarts).
    // "Has the frame": the hub's last arrival moved past the one before the send (no clock bound).
    const lastArrival = () =>
      runInDurableObject(hub, (_instance: RegionHub, state) => {
        const attachment = state.getWebSockets("lhr-quiet")[0]?.deserializeAttachment() as { arrivals: { lastArrivalAt: number } } | undefined;
        return attachment?.arrivals.lastArrivalAt ?? 0;
      });
    const sendAndHear = async (seq: number) => {
      const before = await lastArrival();
      const sentAt = Date.now();
      node.ws.send(JSON.stringify({ type: "heartbeat", seq, load: 0.1, inFlight: 0, free: 8 }));
      await eventually(async () => expect(await lastArrival()).toBeGreaterThan(before));
      console.log(`[nodes] heartbeat ${seq} reached the hub's detector ${Date.now() - sentAt} ms after the send`);
    };
    await sendAndHear(3);
    await eventually(async () => expect(await runDurableObjectAlarm(hub)).toBe(true));
    await eventually(async () => expect((await fleet()).find((n) => n.id === "lhr-quiet")?.health).toBe("down"));
    await sendAndHear(4);
    await eventually(async () => expect(await runDurableObjectAlarm(hub)).toBe(true));
    await eventually(async () => expect((await fleet()).find((n) => n.id === "lhr-quiet")?.health).toBe("healthy"));
    const back = (await fleet()).find((n) => n.id === "lhr-quiet");
    expect(back).toMatchObject({ state: "healthy", stateReason: expect.stringMatching(/resumed/), slowStart: { penaltyMs: expect.any(Number) } });
    expect(back?.slowStart?.penaltyMs).toBeGreaterThan(0);
  });

  it("puts a node that reconnects soon after leaving in slow start, and a first-time node not", async () => {
    const first = await joinNode("lhr-again", "lhr");
    await eventually(async () => expect((await fleet()).find((n) => n.id === "lhr-again")).toMatchObject({ state: "healthy" }));
    expect((await fleet()).find((n) => n.id === "lhr-again")?.slowStart).toBeUndefined();
    first.ws.close(1000, "restart");
    await eventually(async () => expect((await fleet()).some((n) => n.id === "lhr-again")).toBe(false));
    await joinNode("lhr-again", "lhr");
    await eventually(async () => expect((await fleet()).find((n) => n.id === "lhr-again")?.slowStart?.penaltyMs).toBeGreaterThan(0));
  });

  it("passes slow load drift on once it adds up to a step", async () => {
    const node = await joinNode("mad-drift", "mad");
    for (const [seq, load] of [0.03, 0.06, 0.09, 0.12].entries()) {
      node.ws.send(JSON.stringify({ type: "heartbeat", seq, load, inFlight: 1, free: 7 }));
    }
    await eventually(async () => expect((await fleet()).find((n) => n.id === "mad-drift")?.load).toBe(0.12));
  });

  it("takes a draining node out of routing", async () => {
    const node = await joinNode("cdg-drain", "cdg");
    node.ws.send(JSON.stringify({ type: "drain", reason: "upgrade" }));
    await eventually(async () => expect((await fleet()).find((n) => n.id === "cdg-drain")?.health).toBe("draining"));
  });

  it("replaces an older connection of the same node with 4409", async () => {
    const credential = await enroll({ id: "waw-twice", kind: "gpu", region: "waw", gpu: { class: "h100", vramGb: 80, count: 8 }, capacity: 8 });
    const first = await connectNode(credential, "waw-twice");
    const second = await connectNode(credential, "waw-twice");
    expect((await first.closed).code).toBe(CloseCode.replaced);
    await eventually(async () => expect((await fleet()).find((n) => n.id === "waw-twice")?.healthy).toBe(true));
    second.ws.close(1000);
  });

  it("is swept when the liveness clock wakes it, and keeps only a distant backstop alarm of its own", async () => {
    await joinNode("vie-clocked", "vie", {}, {}, false);
    const hub = env.REGION_HUB.getByName("vie");
    const clock = env.LIVENESS_CLOCK.getByName("global");
    const hubAlarm = () => runInDurableObject(hub, (_instance: RegionHub, state) => state.storage.getAlarm());
    // The join signed the hub up with the clock; its own alarm is the backstop, a minute out.
    expect(await runInDurableObject(clock, (instance: LivenessClock) => instance.stats().hubs)).toBeGreaterThan(0);
    const backstop = await hubAlarm();
    expect(backstop).not.toBeNull();
    expect((backstop ?? 0) - Date.now()).toBeGreaterThan(30_000);
    // Freeze the node, then let the clock wake the hub now: the node goes down, and the
    // sweep wrote no alarm of the hub's (the backstop is where it was).
    await silenceNode("vie", "vie-clocked");
    // The clock's real alarm fires (the test runtime runs due alarms).
    await clock.wakeBy("vie", Date.now());
    await eventually(async () => expect((await fleet()).find((n) => n.id === "vie-clocked")?.health).toBe("down"));
    expect(await hubAlarm()).toBe(backstop);
    // The hub told the clock its next deadline, so the clock still has it in its timetable.
    expect(await runInDurableObject(clock, (instance: LivenessClock) => instance.stats().waiting)).toBeGreaterThan(0);
  });

  it("wakes every hub due in one tick, a few at a time, and each sweeps", async () => {
    const regions = ["hel", "osl", "arn", "cph", "dub", "prg"]; // more than CLOCK_TIMING.wakesInFlight
    for (const region of regions) await joinNode(`${region}-lane`, region, {}, {}, false);
    const clock = env.LIVENESS_CLOCK.getByName("global");
    const wakesBefore = await runInDurableObject(clock, (instance: LivenessClock) => instance.stats().wakes);
    for (const region of regions) await silenceNode(region, `${region}-lane`);
    // All due at once: one firing of the clock must reach every one of them.
    const now = Date.now();
    for (const region of regions) await clock.wakeBy(region, now);
    await eventually(async () => {
      const nodes = await fleet();
      for (const region of regions) expect(nodes.find((n) => n.id === `${region}-lane`)?.health).toBe("down");
    });
    expect(CLOCK_TIMING.wakesInFlight).toBeLessThan(regions.length);
    expect(await runInDurableObject(clock, (instance: LivenessClock) => instance.stats().wakes)).toBeGreaterThanOrEqual(wakesBefore + regions.length);
  });
});
