import { SELF, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BASE, CLIENT_KEY, eventually, joinNode } from "./helpers";

const SAO_PAULO = { ...CLIENT_KEY, "x-client-lat": "-23.55", "x-client-lon": "-46.63", "x-client-country": "BR", "x-meridian-kind": "hotspot" };

describe("headers timeout", () => {
  afterEach(() => vi.restoreAllMocks());

  it("moves an idempotent request off a node that never answers, and leaves POSTs alone", async () => {
    // Equal scores rank by id, so scl-a-frozen is the primary.
    await joinNode("scl-a-frozen", "scl", { kind: "hotspot" });
    await joinNode("scl-b-alive", "scl", { kind: "hotspot" });
    const SANTIAGO = { ...CLIENT_KEY, "x-client-lat": "-33.45", "x-client-lon": "-70.67", "x-client-country": "CL", "x-meridian-kind": "hotspot" };
    await eventually(async () => {
      const body = (await (await SELF.fetch(`${BASE}/route`, { headers: SANTIAGO })).json()) as { node: { id: string } | null; fallbacks: { id: string }[] };
      expect(body.node?.id).toBe("scl-a-frozen");
      expect(body.fallbacks.map((f) => f.id)).toContain("scl-b-alive");
    });
    const signals: (AbortSignal | undefined)[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      signals.push(init?.signal ?? undefined);
      if (!url.includes("scl-a-frozen")) return Promise.resolve(new Response("ok"));
      // A frozen node: accepts, never answers, until the gateway gives up.
      return new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
    });
    const started = Date.now();
    const res = await SELF.fetch(`${BASE}/v1/whoami`, { headers: SANTIAGO });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-meridian-node")).toBe("scl-b-alive");
    expect(res.headers.get("x-meridian-route")).toBe("failover");
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    // A POST gets no timeout signal: a long completion may take its time.
    signals.length = 0;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (_input, init) => {
      signals.push(init?.signal ?? undefined);
      return new Response("ok");
    });
    await SELF.fetch(`${BASE}/v1/whoami`, { method: "POST", headers: SANTIAGO, body: "{}" });
    expect(signals).toEqual([undefined]);
  });
});

describe("passive outlier ejection", () => {
  afterEach(() => vi.restoreAllMocks());

  it("ejects a node after 3 consecutive connect failures; requests fail over meanwhile, then go elsewhere first", async () => {
    await joinNode("gru-flaky", "gru", { kind: "hotspot" });
    await joinNode("gru-steady", "gru", { kind: "hotspot" });
    await joinNode("eze-steady", "eze", { kind: "hotspot" });
    // gru-flaky sorts first among equals, so it is the primary until ejected. Waited for in
    // what the routing isolate sees (/route), not in the primary Directory (/admin/fleet):
    // the isolate's copy comes through a replica and may be a moment behind.
    await eventually(async () => {
      const body = (await (await SELF.fetch(`${BASE}/route`, { headers: SAO_PAULO })).json()) as { node: { id: string } | null; fallbacks: { id: string }[] };
      expect(body.node?.id).toBe("gru-flaky");
      expect(body.fallbacks[0]?.id).toBe("gru-steady");
    });
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.includes("gru-flaky")) throw new Error("connect ECONNREFUSED");
      return new Response("ok");
    });
    const routes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await SELF.fetch(`${BASE}/v1/whoami`, { headers: SAO_PAULO });
      expect(res.status).toBe(200);
      routes.push(`${res.headers.get("x-meridian-node")}/${res.headers.get("x-meridian-route")}`);
    }
    expect(routes).toEqual(["gru-steady/failover", "gru-steady/failover", "gru-steady/failover", "gru-steady/primary"]);
    const explained = (await (await SELF.fetch(`${BASE}/route`, { headers: SAO_PAULO })).json()) as { excluded: { id: string; reason: string }[] };
    expect(explained.excluded).toContainEqual(expect.objectContaining({ id: "gru-flaky", reason: "ejected" }));
    const metrics = await (await SELF.fetch(`${BASE}/metrics`, { headers: { authorization: `Bearer ${env.VIEWER_TOKEN}` } })).text();
    expect(metrics).toContain("meridian_ejected_nodes 1");
    const fleet = (await (await SELF.fetch(`${BASE}/admin/fleet`, { headers: { authorization: `Bearer ${env.VIEWER_TOKEN}` } })).json()) as { nodes: { id: string; state: string; stateReason: string; stateSince: string; health: string; ejected?: { reason: string } }[] };
    const flaky = fleet.nodes.find((n) => n.id === "gru-flaky");
    expect(flaky?.ejected?.reason).toMatch(/connect failed/);
    // What routing does with it (ejected), beside what its hub says (healthy).
    expect(flaky).toMatchObject({ state: "ejected", stateReason: expect.stringMatching(/connect failed/), health: "healthy" });
    expect(Date.parse(flaky?.stateSince ?? "")).toBeLessThanOrEqual(Date.now());
    expect(fleet.nodes.find((n) => n.id === "gru-steady")).toMatchObject({ state: "healthy" });
    expect(fleet.nodes.find((n) => n.id === "gru-steady")?.ejected).toBeUndefined();
  });
});
