import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { BASE, CLIENT_KEY, connectNode, enroll, eventually } from "./helpers";

const LAGOS = { ...CLIENT_KEY, "x-client-lat": "6.5244", "x-client-lon": "3.3792", "x-client-country": "NG" };
const TEHRAN = { ...CLIENT_KEY, "x-client-lat": "35.6892", "x-client-lon": "51.389", "x-client-country": "IR" };
const H100 = { class: "h100", vramGb: 80, count: 8 } as const;
const L4 = { class: "l4", vramGb: 24, count: 1 } as const;

interface Candidate {
  id: string;
  pricePerGpuHour: number | null;
  score: number;
  scoreParts: { rttMs: number; loadMs: number; penaltyMs: number; slowStartMs: number; priceMs: number };
}
interface RouteBody {
  node: Candidate | null;
  fallbacks: Candidate[];
  excluded: { id: string; reason: string }[];
}

async function gpu(id: string, region: string, hardware: { class: string; vramGb: number; count: number }, models: string[], price: number, enrolledModels?: string[]) {
  const credential = await enroll({ id, kind: "gpu", region, gpu: hardware, capacity: 8, pricePerGpuHour: price, ...(enrolledModels ? { models: enrolledModels } : {}) });
  return connectNode(credential, id, { kind: "gpu", gpu: hardware as never, models });
}

const chatBody = (model: string, stream = false) => JSON.stringify({ model, stream, messages: [{ role: "user", content: "hi" }] });

describe("OpenAI-native routing through the gateway", () => {
  beforeAll(async () => {
    // Lagos: a cheap small-model node and a dearer one; Accra (near): the only 70B; a hotspot nearest of all.
    await gpu("oa-los-l4", "los", L4, ["small-8b"], 0.4);
    await gpu("oa-los-h100", "los", H100, ["small-8b", "big-70b"], 2.5, ["small-8b"]);
    await gpu("oa-acc-h100", "acc", H100, ["small-8b", "big-70b"], 2.0);
    const hotspot = await enroll({ id: "oa-los-hotspot", kind: "hotspot", region: "los", capacity: 8 });
    await connectNode(hotspot, "oa-los-hotspot", { kind: "hotspot", gpu: undefined });
    await eventually(async () => {
      const res = await SELF.fetch(`${BASE}/v1/models`, { headers: LAGOS });
      const body = (await res.json()) as { data: { id: string; meridian: { nodes: number } }[] };
      expect(body.data.find((m) => m.id === "small-8b")?.meridian.nodes).toBe(3);
    });
  });

  afterEach(() => vi.restoreAllMocks());

  it("lists models from the fleet with where they run; an enrollment's model bound holds", async () => {
    const res = await SELF.fetch(`${BASE}/v1/models`, { headers: LAGOS });
    const body = (await res.json()) as { object: string; data: { id: string; object: string; meridian: { nodes: number; regions: string[]; gpuClasses: string[]; pricePerGpuHour: { min: number; max: number } } }[] };
    expect(body.object).toBe("list");
    const big = body.data.find((m) => m.id === "big-70b");
    // oa-los-h100 advertises big-70b but its enrollment bounds it to small-8b.
    expect(big?.meridian).toMatchObject({ nodes: 1, regions: ["acc"], gpuClasses: ["h100"], pricePerGpuHour: { min: 2, max: 2 } });
    const one = await SELF.fetch(`${BASE}/v1/models/small-8b`, { headers: LAGOS });
    expect(((await one.json()) as { id: string }).id).toBe("small-8b");
  });

  it("routes by the body's model to a GPU node serving it, with no Meridian header", async () => {
    const seen: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      seen.push(input instanceof Request ? input.url : String(input));
      return Response.json({ ok: true });
    });
    const res = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: { ...LAGOS, "content-type": "application/json" }, body: chatBody("big-70b") });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-meridian-node")).toBe("oa-acc-h100");
    const small = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: { ...LAGOS, "content-type": "application/json" }, body: chatBody("small-8b") });
    expect(small.headers.get("x-meridian-node")).toMatch(/^oa-los-(l4|h100)$/);
    expect(seen.every((url) => !url.includes("hotspot"))).toBe(true);
  });

  it("answers an unknown model with 404 in OpenAI's error shape", async () => {
    const res = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: LAGOS, body: chatBody("no-such-model") });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ code: "model_not_found", type: "invalid_request_error", param: "model" });
    expect(typeof body.error.message).toBe("string");
    expect(typeof body.error.requestId).toBe("string");
  });

  it("keeps Meridian's rule inside OpenAI's error object on /v1, and the old shape elsewhere", async () => {
    const res = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: TEHRAN, body: chatBody("small-8b") });
    expect(res.status).toBe(451);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ code: "blocked_by_policy", type: "permission_error", param: null, rule: "embargo-clients" });
    expect(typeof body.error.policyVersion).toBe("number");
    const route = (await (await SELF.fetch(`${BASE}/route`, { headers: TEHRAN })).json()) as { error: Record<string, unknown> };
    expect(route.error.code).toBe("blocked_by_policy");
    expect("type" in route.error).toBe(false);
  });

  it("steers by price within the RTT bound, shows price and score parts, and refuses above x-meridian-max-price", async () => {
    const latency = (await (await SELF.fetch(`${BASE}/route`, { headers: { ...LAGOS, "x-meridian-kind": "gpu" } })).json()) as RouteBody;
    const cost = (await (await SELF.fetch(`${BASE}/route`, { headers: { ...LAGOS, "x-meridian-kind": "gpu", "x-meridian-steer": "cost" } })).json()) as RouteBody;
    expect(cost.node?.id).toBe("oa-los-l4");
    expect(cost.node?.pricePerGpuHour).toBe(0.4);
    const parts = cost.node?.scoreParts;
    expect(parts?.priceMs).toBeGreaterThan(0);
    if (parts) expect(parts.rttMs + parts.loadMs + parts.penaltyMs + parts.slowStartMs + parts.priceMs).toBeCloseTo(cost.node?.score ?? 0, 1);
    expect(latency.node?.scoreParts.priceMs).toBe(0);
    const capped = (await (await SELF.fetch(`${BASE}/route`, { headers: { ...LAGOS, "x-meridian-kind": "gpu", "x-meridian-max-price": "1" } })).json()) as RouteBody;
    expect([capped.node?.id, ...capped.fallbacks.map((f) => f.id)]).toEqual(["oa-los-l4"]);
    expect(capped.excluded).toContainEqual(expect.objectContaining({ id: "oa-acc-h100", reason: "price-above-max" }));
    const bad = await SELF.fetch(`${BASE}/route`, { headers: { ...LAGOS, "x-meridian-steer": "cheapest" } });
    expect(bad.status).toBe(400);
  });

  it("keeps a session on one node by x-meridian-affinity or the body's user", async () => {
    const nodes = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const body = (await (await SELF.fetch(`${BASE}/route`, { headers: { ...LAGOS, "x-meridian-kind": "gpu", "x-meridian-affinity": "conversation-42" } })).json()) as RouteBody & { node: { affinity?: boolean } };
      nodes.add(body.node?.id ?? "");
      expect(body.node?.affinity).toBe(true);
    }
    expect(nodes.size).toBe(1);
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => Response.json({ ok: true }));
    const served = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: LAGOS, body: JSON.stringify({ model: "small-8b", user: "user-7", messages: [] }) });
      served.add(res.headers.get("x-meridian-node") ?? "");
    }
    expect(served.size).toBe(1);
  });

  it("moves a stream whose node sends no first byte within the deadline to the next candidate", async () => {
    const seen: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      seen.push(url);
      if (url.includes("oa-los-l4")) {
        // Headers at once, then silence: a stuck generation.
        const body = new ReadableStream<Uint8Array>({ start: () => undefined });
        init?.signal?.addEventListener("abort", () => undefined);
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }
      return new Response("data: first\n\n", { headers: { "content-type": "text/event-stream" } });
    });
    const request = new Request(`${BASE}/v1/chat/completions`, {
      method: "POST",
      headers: { ...LAGOS, "content-type": "application/json", "x-meridian-steer": "cost" },
      body: chatBody("small-8b", true),
    });
    const ctx = createExecutionContext();
    const started = Date.now();
    const res = await worker.fetch(request, { ...env, UPSTREAM_TTFT_MS: "300" }, ctx);
    expect(await res.text()).toBe("data: first\n\n");
    await waitOnExecutionContext(ctx);
    const took = Date.now() - started;
    console.log(`[ttft] failover after a silent node: ${took} ms (deadline 300 ms)`);
    expect(res.headers.get("x-meridian-route")).toBe("failover");
    expect(seen[0]).toContain("oa-los-l4");
    expect(took).toBeLessThan(5000);
  });

  it("forwards a streaming upload past the inspection cap whole, without reading it first", async () => {
    let received = 0;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const body = init?.body;
      if (body instanceof ReadableStream) {
        const reader = body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          received += value.byteLength;
        }
      }
      return Response.json({ ok: true });
    });
    const chunk = new Uint8Array(64 * 1024).fill(32);
    let sent = 0;
    const upload = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"model":"small-8b","messages":[],"pad":"'));
        if (sent >= 6) {
          controller.enqueue(new TextEncoder().encode('"}'));
          controller.close();
          return;
        }
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: { ...LAGOS, "content-type": "application/json" }, body: upload, duplex: "half" } as RequestInit);
    expect(res.status).toBe(200);
    expect(received).toBe(6 * 64 * 1024 + '{"model":"small-8b","messages":[],"pad":"'.length + 2);
  });
});
