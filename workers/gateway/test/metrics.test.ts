import { SELF, env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { BASE, CLIENT_KEY, TOKYO_HEADERS, eventually, joinNode } from "./helpers";

const VIEWER = { authorization: `Bearer ${env.VIEWER_TOKEN}` };
const scrape = async () => (await SELF.fetch(`${BASE}/metrics`, { headers: VIEWER })).text();

describe("GET /metrics", () => {
  it("needs a token", async () => {
    expect((await SELF.fetch(`${BASE}/metrics`)).status).toBe(401);
  });

  it("counts requests by outcome, nodes by state and region, heartbeats and the policy version", async () => {
    const node = await joinNode("bom-metrics", "bom", { kind: "hotspot" });
    node.ws.send(JSON.stringify({ type: "heartbeat", seq: 1, load: 0.2, inFlight: 1, free: 7 }));
    await eventually(async () => expect((await SELF.fetch(`${BASE}/route`, { headers: { ...TOKYO_HEADERS, "x-meridian-kind": "hotspot" } })).status).toBe(200));
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
    await SELF.fetch(`${BASE}/v1/whoami`, { headers: { ...TOKYO_HEADERS, "x-meridian-kind": "hotspot" } });
    await SELF.fetch(`${BASE}/v1/whoami`, { headers: { ...TOKYO_HEADERS, "x-meridian-kind": "toaster" } });
    await SELF.fetch(`${BASE}/v1/whoami`, { headers: { ...CLIENT_KEY, "x-client-lat": "35.69", "x-client-lon": "51.39", "x-client-country": "IR" } });
    vi.restoreAllMocks();
    await runDurableObjectAlarm(env.REGION_HUB.getByName("bom"));
    const text = await scrape();
    expect(text).toContain('meridian_requests_total{route="/v1",outcome="primary",status="200"} 1');
    expect(text).toContain('meridian_requests_total{route="/v1",outcome="bad_request",status="400"} 1');
    expect(text).toContain('meridian_requests_total{route="/v1",outcome="blocked_by_policy",status="451"} 1');
    expect(text).toContain('meridian_nodes{state="healthy",region="bom"} 1');
    expect(text).toMatch(/meridian_heartbeats_received_total\{region="bom"\} 1\n/);
    expect(text).toMatch(/meridian_policy_version [1-9]\d*\n/);
    expect(text).toMatch(/meridian_routing_examined_nodes_count [1-9]/);
  });
});
