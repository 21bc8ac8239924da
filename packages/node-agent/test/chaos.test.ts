import { afterEach, describe, expect, it } from "vitest";
import { PING_FRAME } from "@meridian/protocol";
import { ChaosNode, validateChaosOptions } from "../src/chaos";
import { silentLogger } from "../src/log";
import { pickChaosVictims, startSimulator, type SimulatorHandle } from "../src/simulator";
import { FakeGateway, waitUntil } from "./fake-gateway";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function fleet(gateway: FakeGateway, nodes: number, extra: { jitterMs?: number; lossRate?: number } = {}): Promise<SimulatorHandle> {
  const handle = await startSimulator({
    gatewayUrl: gateway.url,
    adminToken: "admin-secret",
    nodes,
    seed: 3,
    prefix: "c",
    heartbeatMs: 250,
    tokenMs: 1,
    logger: silentLogger,
    nodeLogger: () => silentLogger,
    ...extra,
  });
  cleanups.push(() => handle.close({ drain: false }));
  return handle;
}

function socketOf(gateway: FakeGateway, nodeId: string) {
  const socket = gateway.sockets.find((s) => s.hello?.node === nodeId);
  if (socket === undefined) throw new Error(`no socket for ${nodeId}`);
  return socket;
}

describe("chaos", () => {
  it("kill cuts the socket without a close frame, never reconnects, and destroys HTTP requests", async () => {
    const gateway = await FakeGateway.start();
    cleanups.push(() => gateway.close());
    const handle = await fleet(gateway, 3);
    const victim = handle.nodes[0];
    if (victim === undefined) throw new Error("empty fleet");
    const upgradesBefore = gateway.upgradeAttempts;

    handle.kill(victim.plan.id);
    const socket = socketOf(gateway, victim.plan.id);
    await waitUntil(() => socket.closed !== undefined, "the abrupt close");
    expect(socket.closed?.code).toBe(1006);
    await expect(gateway.signedFetch(victim.plan.id, `${victim.endpoint}/v1/whoami`)).rejects.toThrow();
    await sleep(1_000); // several backoff periods
    expect(gateway.upgradeAttempts).toBe(upgradesBefore);
    expect(victim.connection?.state).toBe("closed");
    expect(handle.connectedCount()).toBe(2);
  });

  it("freeze stops every frame with the socket open and holds HTTP requests; thaw resumes both", async () => {
    const gateway = await FakeGateway.start();
    cleanups.push(() => gateway.close());
    const handle = await fleet(gateway, 2);
    const victim = handle.nodes[0];
    if (victim === undefined) throw new Error("empty fleet");
    const socket = socketOf(gateway, victim.plan.id);
    await waitUntil(() => socket.frames.length >= 3, "some heartbeats");

    handle.freeze(victim.plan.id);
    const framesAtFreeze = socket.frames.length;
    let answered = false;
    const pending = gateway.signedFetch(victim.plan.id, `${victim.endpoint}/v1/whoami`).then((res) => {
      answered = true;
      return res;
    });
    await sleep(900); // more than 3 intervals of 250 ms
    expect(socket.frames.length).toBe(framesAtFreeze);
    expect(socket.closed).toBeUndefined();
    expect(answered).toBe(false);

    handle.thaw(victim.plan.id);
    const res = await pending;
    expect(res.status).toBe(200);
    await waitUntil(() => socket.frames.length > framesAtFreeze, "frames after thaw");
    expect(socket.frames.slice(framesAtFreeze).every((f) => f === PING_FRAME || f.startsWith("{"))).toBe(true);
  });

  it("lossRate 1 sends no ping or heartbeat after the hello", async () => {
    const gateway = await FakeGateway.start();
    cleanups.push(() => gateway.close());
    const handle = await fleet(gateway, 1, { lossRate: 1 });
    const socket = gateway.sockets[0];
    await sleep(700);
    expect(handle.connectedCount()).toBe(1);
    expect(socket?.frames).toHaveLength(1); // the hello only
  });

  it("jitter keeps the average interval", async () => {
    const gateway = await FakeGateway.start();
    cleanups.push(() => gateway.close());
    const connectFrom = performance.now();
    await fleet(gateway, 1, { jitterMs: 100 });
    const socket = gateway.sockets[0];
    const sleepFrom = performance.now();
    await sleep(1_400);
    // Ticks keep their nominal times (a late timer catches up), so the frame count follows the
    // time that really passed, which a busy machine stretches: judge it against measured time.
    const now = performance.now();
    const slept = now - sleepFrom;
    const sinceConnect = now - connectFrom;
    const frames = socket?.frames.length ?? 0;
    console.log(`[chaos] ${frames} frames ${slept.toFixed(0)} ms after the fleet was up (${sinceConnect.toFixed(0)} ms after the connect began)`);
    // hello + first heartbeat + one tick per 250 ms (jitter +-100 ms cannot add or drop more than one)
    expect(frames).toBeGreaterThanOrEqual(2 + Math.floor(slept / 250) - 1);
    expect(frames).toBeLessThanOrEqual(2 + Math.floor((sinceConnect + 100) / 250));
  });

  it("validates jitter and loss options", async () => {
    expect(validateChaosOptions({})).toEqual({ jitterMs: 0, lossRate: 0 });
    expect(() => validateChaosOptions({ jitterMs: -1 })).toThrow(/jitterMs/);
    expect(() => validateChaosOptions({ jitterMs: Number.NaN })).toThrow(/jitterMs/);
    expect(() => validateChaosOptions({ lossRate: 1.5 })).toThrow(/lossRate/);
    expect(() => validateChaosOptions({ lossRate: -0.1 })).toThrow(/lossRate/);
    expect(() => new ChaosNode({ lossRate: 2 })).toThrow(/lossRate/);
    await expect(startSimulator({ gatewayUrl: "http://127.0.0.1:1", adminToken: "x", nodes: 1, jitterMs: -5, logger: silentLogger })).rejects.toThrow(/jitterMs/);
  });

  it("picks disjoint, deterministic victims", () => {
    const ids = Array.from({ length: 200 }, (_, i) => `n${i}`);
    const a = pickChaosVictims(ids, 10, 5, 7);
    expect(a.killed).toHaveLength(20);
    expect(a.frozen).toHaveLength(10);
    expect(new Set([...a.killed, ...a.frozen]).size).toBe(30);
    expect(pickChaosVictims(ids, 10, 5, 7)).toEqual(a);
    expect(pickChaosVictims(ids, 10, 5, 8)).not.toEqual(a);
  });
});
