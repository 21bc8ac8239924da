import { afterEach, describe, expect, it } from "vitest";
import { ApiErrorSchema, HelloSchema } from "@meridian/protocol";
import { silentLogger } from "../src/log";
import { startSimulator, type SimulatorHandle } from "../src/simulator";
import { FakeGateway, waitUntil } from "./fake-gateway";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("startSimulator", () => {
  it("enrolls and connects a fleet served by one HTTP server, then drains it on close", async () => {
    const gateway = await FakeGateway.start();
    cleanups.push(() => gateway.close());
    const handle: SimulatorHandle = await startSimulator({
      gatewayUrl: gateway.url,
      adminToken: "admin-secret",
      nodes: 12,
      seed: 5,
      prefix: "t",
      heartbeatMs: 250,
      tokenMs: 1,
      connectConcurrency: 4,
      logger: silentLogger,
      nodeLogger: () => silentLogger,
    });
    cleanups.push(() => handle.close({ drain: false }));

    expect(handle.nodes).toHaveLength(12);
    expect(handle.connectedCount()).toBe(12);
    expect(gateway.enrollments).toHaveLength(12);
    expect(gateway.sockets).toHaveLength(12);
    for (const node of handle.nodes) {
      expect(node.endpoint).toBe(`http://127.0.0.1:${handle.port}/n/${node.plan.id}`);
      const socket = gateway.sockets.find((s) => s.hello?.node === node.plan.id);
      expect(socket?.authorization).toBe(`Bearer cred-${node.plan.id}`);
      expect(HelloSchema.parse(socket?.hello).endpoint).toBe(node.endpoint);
    }

    const first = handle.nodes[0];
    if (first === undefined) throw new Error("empty fleet");
    const whoami = await gateway.signedFetch(first.plan.id, `${first.endpoint}/v1/whoami`);
    expect(whoami.headers.get("x-served-by")).toBe(first.plan.id);
    expect(await whoami.json()).toEqual({ node: first.plan.id, region: first.plan.region, kind: first.plan.kind });

    // Every node of the fleet checks the gateway's signature with its own key.
    expect(ApiErrorSchema.parse(await (await fetch(`${first.endpoint}/v1/whoami`)).json()).error.code).toBe("signature_required");
    const second = handle.nodes[1];
    if (second === undefined) throw new Error("fleet of one");
    const signedForAnother = await gateway.signedFetch(first.plan.id, `${first.endpoint}/v1/whoami`, {}, { signAs: second.plan.id });
    expect(signedForAnother.status).toBe(401);

    const unknown = await fetch(`http://127.0.0.1:${handle.port}/n/no-such-node/v1/whoami`);
    expect(unknown.status).toBe(404);
    expect(ApiErrorSchema.parse(await unknown.json()).error.code).toBe("unknown_node");

    await handle.close();
    await waitUntil(() => gateway.sockets.every((s) => s.closed !== undefined), "every socket to close");
    for (const socket of gateway.sockets) {
      expect(FakeGateway.jsonFrames(socket).some((m) => m.type === "drain")).toBe(true);
      expect(socket.closed?.code).toBe(1000);
    }
  });

  it("stops at once when the admin token is refused", async () => {
    const gateway = await FakeGateway.start();
    cleanups.push(() => gateway.close());
    await expect(
      startSimulator({
        gatewayUrl: gateway.url,
        adminToken: "wrong",
        nodes: 50,
        connectConcurrency: 2,
        logger: silentLogger,
        nodeLogger: () => silentLogger,
      }),
    ).rejects.toThrow(/401/);
    expect(gateway.enrollRequests).toBeLessThanOrEqual(2);
    expect(gateway.sockets).toHaveLength(0);
  });
});
