import { afterEach, describe, expect, it } from "vitest";
import {
  CloseCode,
  DrainSchema,
  HeartbeatSchema,
  PING_FRAME,
  PROTOCOL_VERSION,
  type Welcome,
} from "@meridian/protocol";
import { AGENT_VERSION, NodeConnection, directRuntime, type ConnectionRuntime } from "../src/connection";
import { silentLogger } from "../src/log";
import type { LoadSnapshot, LoadSource } from "../src/workload";
import { FakeGateway, waitUntil, type FakeNodeSocket } from "./fake-gateway";

/** A load source the test moves by hand. */
class ManualLoad implements LoadSource {
  inFlight = 0;
  private waiters: Array<() => void> = [];
  constructor(private readonly capacity: number) {}

  snapshot(): LoadSnapshot {
    return {
      inFlight: this.inFlight,
      free: Math.max(0, this.capacity - this.inFlight),
      load: Math.min(1, this.inFlight / this.capacity),
    };
  }

  set(inFlight: number): void {
    this.inFlight = inFlight;
    if (inFlight === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { credential?: string; autoWelcome?: boolean; random?: () => number; runtime?: ConnectionRuntime } = {}) {
  const gateway = await FakeGateway.start({ autoWelcome: options.autoWelcome });
  const load = new ManualLoad(10);
  const connection = new NodeConnection({
    gatewayUrl: gateway.url,
    credential: options.credential ?? "cred-nrt-gpu-1",
    node: "nrt-gpu-1",
    kind: "gpu",
    gpu: { class: "h100", vramGb: 80, count: 8 },
    capacity: 10,
    endpoint: "http://127.0.0.1:9/n/nrt-gpu-1",
    heartbeatMs: 250,
    load,
    logger: silentLogger,
    drainTimeoutMs: 2_000,
    // Reconnect at once so the tests need not wait out a backoff.
    random: options.random ?? (() => 0),
    ...(options.runtime ? { runtime: options.runtime } : {}),
  });
  const events: string[] = [];
  connection.on("connected", () => events.push("connected"));
  connection.on("disconnected", (code) => events.push(`disconnected ${code}`));
  connection.on("reconnecting", () => events.push("reconnecting"));
  connection.on("fatal", () => events.push("fatal"));
  connection.on("drained", () => events.push("drained"));
  cleanups.push(async () => {
    await connection.close();
    await gateway.close();
  });
  return { gateway, load, connection, events };
}

const firstSocket = (gateway: FakeGateway): FakeNodeSocket => {
  const socket = gateway.sockets[0];
  if (socket === undefined) throw new Error("no socket yet");
  return socket;
};

describe("NodeConnection", () => {
  it("starts its heartbeat rhythm at a random point of the first interval, then keeps the interval", async () => {
    // The delays the connection asks its timers for, as they are asked.
    const delays: number[] = [];
    const runtime: ConnectionRuntime = { ...directRuntime, schedule: (callback, ms) => (delays.push(ms), directRuntime.schedule(callback, ms)) };
    const { gateway, connection } = await setup({ random: () => 0.8, runtime });
    // Listeners run inside the welcome, before its first tick is armed.
    let ticksFrom = Number.POSITIVE_INFINITY;
    connection.once("connected", () => (ticksFrom = delays.length));
    connection.start();
    await waitUntil(() => gateway.sockets.length === 1 && ticksFrom !== Number.POSITIVE_INFINITY, "the welcome");
    await waitUntil(() => FakeGateway.jsonFrames(firstSocket(gateway)).length + firstSocket(gateway).frames.filter((f) => f === PING_FRAME).length >= 4, "three frames after the hello");
    const ticks = delays.slice(ticksFrom);
    // 250 ms interval, random 0.8: the first tick comes 50 ms after the welcome, not 250.
    expect(ticks[0]).toBeLessThanOrEqual(50);
    // Then at most one interval apart (less however late the tick before it ran).
    expect(ticks[1]).toBeLessThanOrEqual(250);
  });

  it("presents the credential, says hello, and heartbeats or pings every interval after welcome", async () => {
    const { gateway, load, connection, events } = await setup();
    const welcomed = new Promise<Welcome>((resolve) => connection.once("connected", resolve));
    connection.start();
    await waitUntil(() => gateway.sockets.length === 1, "the socket");
    const socket = firstSocket(gateway);
    expect(socket.authorization).toBe("Bearer cred-nrt-gpu-1");

    const welcome = await welcomed;
    expect(welcome).toMatchObject({ node: "nrt-gpu-1", region: "nrt", heartbeatMs: 250 });
    expect(connection.state).toBe("ready");
    expect(connection.region).toBe("nrt");
    expect(socket.hello).toMatchObject({
      protocol: PROTOCOL_VERSION,
      node: "nrt-gpu-1",
      kind: "gpu",
      capacity: 10,
      endpoint: "http://127.0.0.1:9/n/nrt-gpu-1",
      heartbeatMs: 250,
      agent: AGENT_VERSION,
    });

    // One heartbeat right after welcome, then pings while nothing changes.
    await waitUntil(() => socket.frames.filter((f) => f === PING_FRAME).length >= 2, "two pings");
    const [hello, first, ...rest] = socket.frames;
    expect(JSON.parse(hello ?? "")).toMatchObject({ type: "hello" });
    expect(HeartbeatSchema.parse(JSON.parse(first ?? ""))).toEqual({
      type: "heartbeat",
      seq: 0,
      load: 0,
      inFlight: 0,
      free: 10,
    });
    expect(rest.every((f) => f === PING_FRAME)).toBe(true);

    // A change is reported at the next interval instead of a ping.
    load.set(3);
    await waitUntil(() => FakeGateway.jsonFrames(socket).filter((m) => m.type === "heartbeat").length >= 2, "a heartbeat");
    const heartbeats = FakeGateway.jsonFrames(socket).filter((m) => m.type === "heartbeat");
    expect(HeartbeatSchema.parse(heartbeats[1])).toEqual({ type: "heartbeat", seq: 1, load: 0.3, inFlight: 3, free: 7 });

    // With nothing changing, a full heartbeat still goes out after 5 intervals.
    const framesBefore = socket.frames.length;
    const waitFrom = Date.now();
    await waitUntil(() => FakeGateway.jsonFrames(socket).filter((m) => m.type === "heartbeat").length >= 3, "a periodic heartbeat", 15_000);
    console.log(`[connection] periodic heartbeat ${Date.now() - waitFrom} ms after the last change (5 intervals of 250 ms)`);
    const sinceChange = socket.frames.slice(framesBefore);
    expect(sinceChange.slice(0, 4).every((f) => f === PING_FRAME)).toBe(true);
    expect(events).toEqual(["connected"]);
  });

  it("gives up after a close with 4403 and does not reconnect", async () => {
    const { gateway, connection, events } = await setup();
    const fatal = new Promise<Error>((resolve) => connection.once("fatal", resolve));
    connection.start();
    await waitUntil(() => connection.state === "ready", "welcome");
    const socket = firstSocket(gateway);
    socket.ws.send(JSON.stringify({ type: "error", code: "identity_mismatch", message: "hello does not match credential" }));
    socket.ws.close(CloseCode.identityMismatch, "identity mismatch");

    const error = await fatal;
    expect(error.message).toMatch(/4403/);
    expect(error.message).toMatch(/identity_mismatch/);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(gateway.upgradeAttempts).toBe(1);
    expect(connection.state).toBe("closed");
    expect(events).toEqual(["connected", "disconnected 4403", "fatal"]);
  });

  it("stops when another connection of the same node replaces it (4409), so two agents cannot fight forever", async () => {
    const { gateway, connection, events } = await setup();
    const fatal = new Promise<Error>((resolve) => connection.once("fatal", resolve));
    connection.start();
    await waitUntil(() => connection.state === "ready", "welcome");
    firstSocket(gateway).ws.close(CloseCode.replaced, "replaced by a newer connection of the same node");
    expect((await fatal).message).toMatch(/4409/);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(gateway.upgradeAttempts).toBe(1);
    expect(events).toEqual(["connected", "disconnected 4409", "fatal"]);
  });

  it("does not retry when the upgrade is refused with 401, and reports the body", async () => {
    const { gateway, connection } = await setup({ credential: "not-a-credential" });
    const fatal = new Promise<Error>((resolve) => connection.once("fatal", resolve));
    connection.start();
    const error = await fatal;
    expect(error.message).toMatch(/401/);
    expect(error.message).toMatch(/credential rejected/);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(gateway.upgradeAttempts).toBe(1);
  });

  it("reconnects and says hello again after the gateway drops the socket abruptly", async () => {
    const { gateway, connection, events } = await setup();
    connection.start();
    await waitUntil(() => connection.state === "ready", "welcome");
    firstSocket(gateway).ws.terminate();

    await waitUntil(() => gateway.sockets.length === 2 && connection.state === "ready", "the reconnect");
    expect(gateway.sockets[1]?.hello?.node).toBe("nrt-gpu-1");
    expect(gateway.sockets[1]?.authorization).toBe("Bearer cred-nrt-gpu-1");
    expect(events).toEqual(["connected", "disconnected 1006", "reconnecting", "connected"]);
  });

  it("drains: announces, waits for in-flight work, then closes with 1000 and stays closed", async () => {
    const { gateway, load, connection, events } = await setup();
    connection.start();
    await waitUntil(() => connection.state === "ready", "welcome");
    const socket = firstSocket(gateway);
    load.set(2);

    let drained = false;
    const draining = connection.drain("upgrade").then(() => {
      drained = true;
    });
    await waitUntil(() => FakeGateway.jsonFrames(socket).some((m) => m.type === "drain"), "the drain message");
    const drain = FakeGateway.jsonFrames(socket).find((m) => m.type === "drain");
    expect(DrainSchema.parse(drain)).toEqual({ type: "drain", reason: "upgrade" });

    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(drained).toBe(false);
    expect(socket.closed).toBeUndefined();

    load.set(0);
    await draining;
    await waitUntil(() => socket.closed !== undefined, "the close");
    expect(socket.closed?.code).toBe(1000);
    expect(events.at(-1)).toBe("drained");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(gateway.upgradeAttempts).toBe(1);
  });

  it("drains when the gateway commands it and ignores invalid gateway messages", async () => {
    const { gateway, connection, events } = await setup();
    connection.start();
    await waitUntil(() => connection.state === "ready", "welcome");
    const socket = firstSocket(gateway);

    socket.ws.send("{not json");
    socket.ws.send(JSON.stringify({ type: "welcome", node: "nrt-gpu-1" }));
    socket.ws.send(JSON.stringify({ type: "surprise" }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(connection.state).toBe("ready");

    socket.ws.send(JSON.stringify({ type: "command", command: "drain" }));
    await waitUntil(() => events.includes("drained"), "the drain");
    expect(FakeGateway.jsonFrames(socket).some((m) => m.type === "drain")).toBe(true);
    await waitUntil(() => socket.closed !== undefined, "the close");
    expect(socket.closed?.code).toBe(1000);
    expect(connection.state).toBe("closed");
  });

  it("retries with backoff while the gateway is unreachable", async () => {
    const { gateway, connection, events } = await setup();
    await gateway.close();
    connection.start();
    await waitUntil(() => events.filter((e) => e === "reconnecting").length >= 3, "several retries");
    expect(connection.state).not.toBe("closed");
    expect(events).not.toContain("fatal");
  });
});
