import { SELF, createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { BASE, CLIENT_KEY, TOKYO_HEADERS, eventually, joinNode } from "./helpers";

interface RouteBody {
  node: { id: string; region: string; kind: string } | null;
  fallbacks: { id: string }[];
  excluded: { id: string; reason: string }[];
  client: { source: string; country?: string };
}

const routeFor = async (headers: Record<string, string>) => {
  const res = await SELF.fetch(`${BASE}/route`, { headers });
  return { status: res.status, body: (await res.json()) as RouteBody, res };
};

describe("routing through the gateway", () => {
  beforeAll(async () => {
    await joinNode("nrt-h100", "nrt");
    await joinNode("icn-h100", "icn");
    await joinNode("nrt-4090", "nrt", { gpu: { class: "rtx4090", vramGb: 24, count: 1 } });
    await joinNode("fra-b200", "fra", { gpu: { class: "b200", vramGb: 192, count: 8 } });
    await joinNode("nrt-hotspot", "nrt", { kind: "hotspot" });
    // The isolate's snapshot refreshes in the background: wait until it holds all five.
    await eventually(async () => {
      const { body } = await routeFor({ ...TOKYO_HEADERS, "x-meridian-gpu": "h100" });
      const seen = [body.node?.id, ...body.fallbacks.map((f) => f.id), ...body.excluded.map((x) => x.id)];
      expect(seen).toEqual(expect.arrayContaining(["nrt-h100", "icn-h100", "nrt-4090", "fra-b200", "nrt-hotspot"]));
    });
  });

  afterEach(() => vi.restoreAllMocks());

  it("sends a Tokyo client to a Tokyo node and explains every exclusion", async () => {
    const { body } = await routeFor({ ...TOKYO_HEADERS, "x-meridian-gpu": "h100" });
    expect(body.node).toMatchObject({ id: "nrt-h100", region: "nrt" });
    expect(body.fallbacks.map((f) => f.id)).toEqual(["icn-h100"]);
    expect(body.excluded).toContainEqual(expect.objectContaining({ id: "nrt-4090", reason: "gpu-class-mismatch" }));
    expect(body.excluded).toContainEqual(expect.objectContaining({ id: "nrt-hotspot", reason: "kind-mismatch" }));
    expect(body.client.source).toBe("dev-headers");
  });

  it("never sends a B200 request to the nearer RTX 4090", async () => {
    const { body } = await routeFor({ ...TOKYO_HEADERS, "x-meridian-gpu": "B200" });
    expect(body.node?.id).toBe("fra-b200");
  });

  it("rejects bad requirement headers with 400", async () => {
    const bad: Record<string, string>[] = [{ "x-meridian-kind": "toaster" }, { "x-meridian-gpu": "tpu9" }, { "x-meridian-min-vram-gb": "lots" }, { "x-meridian-kind": "hotspot", "x-meridian-gpu": "h100" }];
    for (const headers of bad) {
      const { status, body } = await routeFor({ ...TOKYO_HEADERS, ...headers });
      expect(status).toBe(400);
      expect((body as unknown as { error: { code: string } }).error.code).toBe("invalid_requirements");
    }
    const geo = await routeFor({ ...CLIENT_KEY, "x-client-lat": "91", "x-client-lon": "0" });
    expect(geo.status).toBe(400);
  });

  it("answers 503 with Retry-After when nothing qualifies", async () => {
    const { status, res, body } = await routeFor({ ...TOKYO_HEADERS, "x-meridian-gpu": "mi300x" });
    expect(status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    expect((body as unknown as { error: { code: string } }).error.code).toBe("no_healthy_node");
  });

  it("ignores x-client-* headers unless DEV_TRUST_CLIENT_GEO is true, and uses request.cf", async () => {
    const production = { ...env, DEV_TRUST_CLIENT_GEO: undefined };
    const frankfurtClient = new Request(`${BASE}/route`, {
      headers: TOKYO_HEADERS,
      cf: { latitude: "50.1109", longitude: "8.6821", country: "DE", regionCode: "HE" },
    });
    const ctx = createExecutionContext();
    const res = await worker.fetch(frankfurtClient, production, ctx);
    await waitOnExecutionContext(ctx);
    const body = (await res.json()) as RouteBody & { client: { subdivision?: string } };
    expect(body.client).toMatchObject({ source: "cf", country: "DE", subdivision: "DE-HE" });
    expect(body.node?.id).toBe("fra-b200");
  });

  it("proxies /v1/* to the chosen node with the routing headers, streaming the body", async () => {
    const seen: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      seen.push(url);
      return new Response("data: one\n\ndata: two\n\n", { headers: { "content-type": "text/event-stream" } });
    });
    const res = await SELF.fetch(`${BASE}/v1/chat/completions?x=1`, { method: "POST", headers: { ...TOKYO_HEADERS, "x-meridian-gpu": "h100", "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-meridian-node")).toBe("nrt-h100");
    expect(res.headers.get("x-meridian-region")).toBe("nrt");
    expect(res.headers.get("x-meridian-route")).toBe("primary");
    expect(await res.text()).toBe("data: one\n\ndata: two\n\n");
    expect(seen).toEqual(["http://node-nrt-h100.test/v1/chat/completions?x=1"]);
  });

  it("retries the next candidate once when the first cannot be reached", async () => {
    const seen: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      seen.push(url);
      if (url.includes("nrt-h100")) throw new Error("connect ECONNREFUSED");
      return new Response("ok");
    });
    const res = await SELF.fetch(`${BASE}/v1/whoami`, { headers: { ...TOKYO_HEADERS, "x-meridian-gpu": "h100" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-meridian-node")).toBe("icn-h100");
    expect(res.headers.get("x-meridian-route")).toBe("failover");
    expect(seen.length).toBe(2);
  });

  it("retries a 5xx only for idempotent methods, and reports 502 when every attempt fails", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("boom", { status: 500 }));
    const post = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: { ...TOKYO_HEADERS, "x-meridian-gpu": "h100" }, body: "{}" });
    expect(post.status).toBe(500);
    expect(post.headers.get("x-meridian-node")).toBe("nrt-h100");
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => {
      throw new Error("connect ECONNREFUSED");
    });
    const get = await SELF.fetch(`${BASE}/v1/whoami`, { headers: { ...TOKYO_HEADERS, "x-meridian-gpu": "h100" } });
    expect(get.status).toBe(502);
    expect(((await get.json()) as { error: { code: string } }).error.code).toBe("upstream_failed");
  });
});
