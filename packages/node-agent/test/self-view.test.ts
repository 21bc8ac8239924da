import { afterEach, describe, expect, it } from "vitest";
import { NodeConnection } from "../src/connection";
import type { Logger } from "../src/log";
import { selfViewChanges, watchSelfView, type SelfView } from "../src/self-view";
import { NodeWorkload } from "../src/workload";
import { FakeGateway, waitUntil } from "./fake-gateway";

const view = (state: SelfView["state"], extra: Partial<SelfView> = {}): SelfView => ({ id: "nrt-gpu-1", state, stateReason: null, stateSince: 1, ...extra });

describe("selfViewChanges", () => {
  it("warns when the node turns suspect, down or ejected, once per state", () => {
    expect(selfViewChanges(undefined, view("healthy"))).toEqual([]);
    expect(selfViewChanges(view("healthy"), view("suspect", { stateReason: "missed heartbeats" }))).toEqual([
      { level: "warn", message: "the gateway sees this node as suspect (missed heartbeats) since 1" },
    ]);
    expect(selfViewChanges(view("suspect"), view("suspect"))).toEqual([]);
    expect(selfViewChanges(view("suspect"), view("down"))[0]?.level).toBe("warn");
    expect(selfViewChanges(undefined, view("ejected"))[0]?.level).toBe("warn");
  });

  it("says once when the node recovers", () => {
    expect(selfViewChanges(view("down"), view("healthy"))).toEqual([{ level: "info", message: "the gateway sees this node as healthy since 1 again" }]);
    expect(selfViewChanges(view("healthy"), view("draining"))).toEqual([]);
  });

  it("warns when a geo flag appears and tells when it is cleared", () => {
    expect(selfViewChanges(view("healthy"), view("healthy", { geoFlag: { reason: "rtt" } }))).toEqual([
      { level: "warn", message: 'the gateway flagged this node\'s location: {"reason":"rtt"}' },
    ]);
    expect(selfViewChanges(view("healthy", { geoFlag: "x" }), view("healthy", { geoFlag: "x" }))).toEqual([]);
    expect(selfViewChanges(view("healthy", { geoFlag: "x" }), view("healthy"))[0]?.level).toBe("info");
  });
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function recordingLogger(lines: string[]): Logger {
  return { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
}

async function connectedNode(gateway: FakeGateway, lines: string[], intervalMs: number) {
  const workload = new NodeWorkload({ id: "nrt-gpu-1", kind: "gpu", region: "nrt", gpu: { class: "h100", vramGb: 80, count: 1 }, capacity: 4 });
  const connection = new NodeConnection({ gatewayUrl: gateway.url, credential: "cred-nrt-gpu-1", node: "nrt-gpu-1", kind: "gpu", gpu: workload.identity.gpu, capacity: 4, endpoint: "http://127.0.0.1:9", heartbeatMs: 250, load: workload });
  const stop = watchSelfView(connection, { gatewayUrl: gateway.url, credential: "cred-nrt-gpu-1", logger: recordingLogger(lines), intervalMs });
  cleanups.push(async () => {
    stop();
    await connection.close();
  });
  connection.start();
  return connection;
}

describe("watchSelfView", () => {
  it("polls /nodes/me with the node credential while connected and logs the turns", async () => {
    const gateway = await FakeGateway.start({ selfViews: { "nrt-gpu-1": [view("healthy"), view("suspect"), view("suspect"), view("healthy")] } });
    cleanups.push(() => gateway.close());
    const lines: string[] = [];
    await connectedNode(gateway, lines, 50);
    await waitUntil(() => gateway.selfViewRequests >= 5, "five polls");
    expect(lines.filter((l) => l.includes("the gateway sees"))).toEqual([
      "warn the gateway sees this node as suspect since 1",
      "info the gateway sees this node as healthy since 1 again",
    ]);
  });

  it("stops quietly on a 404 (a gateway without /nodes/me)", async () => {
    const gateway = await FakeGateway.start();
    cleanups.push(() => gateway.close());
    const lines: string[] = [];
    const connection = await connectedNode(gateway, lines, 30);
    await waitUntil(() => connection.state === "ready" && gateway.selfViewRequests >= 1, "the first poll");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(gateway.selfViewRequests).toBe(1);
    expect(lines).toEqual([]);
  });
});
