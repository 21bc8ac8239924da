import { randomBytes } from "node:crypto";
import { request, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiErrorSchema, MAX_SIGNATURE_SKEW_MS, importRequestKey, signRequest } from "@meridian/protocol";
import { RequestVerifier } from "../src/request-auth";
import { MAX_CHAT_BODY_BYTES, NodeWorkload, closeServer, createWorkloadServer, listen } from "../src/workload";
import { waitUntil } from "./fake-gateway";

/** The request key a welcome would have brought. */
const REQUEST_KEY = randomBytes(32).toString("base64url");
const signingKey = importRequestKey(REQUEST_KEY);

async function signatureHeaders(nodeId: string, method: string, url: string, nowMs = Date.now()): Promise<Record<string, string>> {
  const target = new URL(url);
  return signRequest(await signingKey, method, `${target.pathname}${target.search}`, nodeId, nowMs);
}

/** fetch, signed as the gateway forwards requests to `nodeId`. */
async function signedFetch(nodeId: string, url: string, init: RequestInit = {}): Promise<Response> {
  const signature = await signatureHeaders(nodeId, init.method ?? "GET", url);
  return fetch(url, { ...init, headers: { ...Object.fromEntries(new Headers(init.headers)), ...signature } });
}

const TOKEN_MS = 20;

interface Running {
  workload: NodeWorkload;
  server: Server;
  url: string;
}

/** `requestKey` null: a node the gateway has not welcomed yet. */
async function serve(workload: NodeWorkload, requestKey: string | null = REQUEST_KEY): Promise<Running> {
  const verifier = new RequestVerifier(workload.identity.id);
  if (requestKey !== null) verifier.useKey(requestKey);
  const server = createWorkloadServer(workload, verifier);
  const port = await listen(server, "127.0.0.1", 0);
  return { workload, server, url: `http://127.0.0.1:${port}` };
}

async function expectError(response: Response, status: number, code: string): Promise<void> {
  expect(response.status).toBe(status);
  const body = ApiErrorSchema.parse(await response.json());
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
}

const chat = (url: string, body: unknown, signal?: AbortSignal, nodeId = "nrt-gpu-1"): Promise<Response> =>
  signedFetch(nodeId, `${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });

describe("GPU workload", () => {
  let gpu: Running;
  beforeAll(async () => {
    gpu = await serve(
      new NodeWorkload(
        { id: "nrt-gpu-1", kind: "gpu", region: "nrt", gpu: { class: "h100", vramGb: 80, count: 8 }, capacity: 4 },
        { tokenMs: TOKEN_MS },
      ),
    );
  });
  afterAll(async () => {
    gpu.server.closeAllConnections();
    await closeServer(gpu.server);
  });

  it("answers whoami with x-served-by", async () => {
    const response = await signedFetch("nrt-gpu-1", `${gpu.url}/v1/whoami`);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-served-by")).toBe("nrt-gpu-1");
    expect(await response.json()).toEqual({ node: "nrt-gpu-1", region: "nrt", kind: "gpu" });
  });

  it("lists its model OpenAI-style", async () => {
    const response = await signedFetch("nrt-gpu-1", `${gpu.url}/v1/models`);
    const body = (await response.json()) as { object: string; data: Array<Record<string, unknown>> };
    expect(body.object).toBe("list");
    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({ id: "meridian-h100", object: "model", owned_by: "meridian" });
    expect(typeof body.data[0]?.created).toBe("number");
  });

  it("returns a whole chat.completion with usage when not streaming", async () => {
    const started = Date.now();
    const response = await chat(gpu.url, { messages: [{ role: "user", content: "hello there" }], max_tokens: 5 });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-served-by")).toBe("nrt-gpu-1");
    const body = (await response.json()) as {
      object: string;
      model: string;
      choices: Array<{ message: { role: string; content: string }; finish_reason: string }>;
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    expect(Date.now() - started).toBeGreaterThanOrEqual(5 * TOKEN_MS * 0.8);
    expect(body.object).toBe("chat.completion");
    expect(body.model).toBe("meridian-h100");
    expect(body.choices[0]?.message.role).toBe("assistant");
    expect(body.choices[0]?.message.content.split(" ")).toHaveLength(5);
    expect(body.usage).toEqual({ prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 });

    // Same node and prompt give the same words.
    const again = (await (
      await chat(gpu.url, { messages: [{ role: "user", content: "hello there" }], max_tokens: 5 })
    ).json()) as typeof body;
    expect(again.choices[0]?.message.content).toBe(body.choices[0]?.message.content);
  });

  it("ends a stream with a usage chunk when stream_options.include_usage is set", async () => {
    const response = await chat(gpu.url, { messages: [{ role: "user", content: "count these words" }], stream: true, max_tokens: 5, stream_options: { include_usage: true } });
    const events = (await response.text()).split("\n\n").filter(Boolean);
    expect(events.at(-1)).toBe("data: [DONE]");
    const last = JSON.parse(events.at(-2)?.slice("data: ".length) ?? "{}") as Record<string, unknown>;
    expect(last).toMatchObject({ object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } });
    // Without it, no chunk carries usage (as OpenAI does).
    const plain = await (await chat(gpu.url, { messages: [{ role: "user", content: "x" }], stream: true, max_tokens: 2 })).text();
    expect(plain).not.toContain('"usage"');
  });

  it("streams SSE chunks as tokens are produced and ends with [DONE]", async () => {
    const started = Date.now();
    const response = await chat(gpu.url, { messages: [{ role: "user", content: "stream" }], stream: true, max_tokens: 8 });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    const decoder = new TextDecoder();
    let text = "";
    const arrivals: number[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(Date.now() - started);
      text += decoder.decode(value, { stream: true });
    }
    const events = text.split("\n\n").filter(Boolean);
    expect(events.every((e) => e.startsWith("data: "))).toBe(true);
    expect(events.at(-1)).toBe("data: [DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice("data: ".length)) as Record<string, unknown>);
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    // role chunk + 8 tokens + final chunk with finish_reason
    expect(chunks).toHaveLength(10);
    expect(chunks.at(-1)).toMatchObject({ choices: [{ finish_reason: "length" }] });
    // Written as time passes, not in one burst at the end.
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    const last = arrivals.at(-1) ?? 0;
    const first = arrivals[0] ?? 0;
    expect(last - first).toBeGreaterThanOrEqual(8 * TOKEN_MS * 0.6);
  });

  it("counts in-flight requests and stops generating when the client leaves", async () => {
    const abort = new AbortController();
    const response = await chat(
      gpu.url,
      { messages: [{ role: "user", content: "long" }], stream: true, max_tokens: 1024 },
      abort.signal,
    );
    expect(gpu.workload.snapshot()).toEqual({ inFlight: 1, free: 3, load: 0.25 });
    const reader = response.body?.getReader();
    await reader?.read();
    abort.abort();
    // 1024 tokens would take ~20 s; the request must end well before that.
    const abortedAt = Date.now();
    await waitUntil(() => gpu.workload.inFlight === 0, "the aborted stream to end", 10_000);
    console.log(`[workload] aborted stream ended ${Date.now() - abortedAt} ms after the client left`);
    expect(gpu.workload.snapshot()).toEqual({ inFlight: 0, free: 4, load: 0 });
    expect(await gpu.workload.whenIdle(10)).toBe(true);
  });

  it("rejects bad JSON and bad requests with the error shape", async () => {
    await expectError(await chat(gpu.url, "{not json"), 400, "invalid_json");
    await expectError(await chat(gpu.url, { messages: [] }), 400, "invalid_request");
    await expectError(await chat(gpu.url, { messages: [{ role: "robot", content: "x" }] }), 400, "invalid_request");
    await expectError(
      await chat(gpu.url, { messages: [{ role: "user", content: "x" }], max_tokens: 0 }),
      400,
      "invalid_request",
    );
    await expectError(
      await chat(gpu.url, { messages: [{ role: "user", content: "x" }], stream: "yes" }),
      400,
      "invalid_request",
    );
  });

  it("refuses bodies over 1 MiB with 413", async () => {
    const signature = await signatureHeaders("nrt-gpu-1", "POST", `${gpu.url}/v1/chat/completions`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gpu.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(MAX_CHAT_BODY_BYTES + 1), ...signature },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
  });

  it("answers unknown paths with 404, wrong methods with 405, and serves no hotspot data", async () => {
    const missing = await signedFetch("nrt-gpu-1", `${gpu.url}/v1/nope`);
    expect(missing.headers.get("x-served-by")).toBe("nrt-gpu-1");
    await expectError(missing, 404, "not_found");
    const wrongMethod = await signedFetch("nrt-gpu-1", `${gpu.url}/v1/chat/completions`);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    await expectError(wrongMethod, 405, "method_not_allowed");
    await expectError(await signedFetch("nrt-gpu-1", `${gpu.url}/v1/data?bytes=10`), 404, "not_found");
  });
});

describe("hotspot workload", () => {
  let hotspot: Running;
  beforeAll(async () => {
    hotspot = await serve(new NodeWorkload({ id: "ams-hotspot-1", kind: "hotspot", region: "ams", capacity: 16 }));
  });
  afterAll(async () => {
    hotspot.server.closeAllConnections();
    await closeServer(hotspot.server);
  });

  it("returns exactly N bytes as octet-stream", async () => {
    for (const bytes of [0, 1, 65_536, 200_003]) {
      const response = await signedFetch("ams-hotspot-1", `${hotspot.url}/v1/data?bytes=${bytes}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/octet-stream");
      expect(response.headers.get("content-length")).toBe(String(bytes));
      expect(response.headers.get("x-served-by")).toBe("ams-hotspot-1");
      expect((await response.arrayBuffer()).byteLength).toBe(bytes);
    }
  });

  it("rejects byte counts outside 0..1 GiB", async () => {
    for (const bad of ["-1", "abc", "1.5", String(1024 ** 3 + 1), ""]) {
      await expectError(await signedFetch("ams-hotspot-1", `${hotspot.url}/v1/data?bytes=${bad}`), 400, "invalid_request");
    }
    await expectError(await signedFetch("ams-hotspot-1", `${hotspot.url}/v1/data`), 400, "invalid_request");
  });

  it("answers whoami but not chat", async () => {
    expect(await (await signedFetch("ams-hotspot-1", `${hotspot.url}/v1/whoami`)).json()).toEqual({
      node: "ams-hotspot-1",
      region: "ams",
      kind: "hotspot",
    });
    await expectError(await chat(hotspot.url, { messages: [{ role: "user", content: "x" }] }, undefined, "ams-hotspot-1"), 404, "not_found");
    await expectError(await signedFetch("ams-hotspot-1", `${hotspot.url}/v1/data?bytes=1`, { method: "POST" }), 405, "method_not_allowed");
  });
});

describe("signed requests", () => {
  let node: Running;
  let unwelcomed: Running;
  beforeAll(async () => {
    node = await serve(new NodeWorkload({ id: "fra-hotspot-1", kind: "hotspot", region: "fra", capacity: 4 }));
    unwelcomed = await serve(new NodeWorkload({ id: "fra-hotspot-2", kind: "hotspot", region: "fra", capacity: 4 }), null);
  });
  afterAll(async () => {
    for (const running of [node, unwelcomed]) {
      running.server.closeAllConnections();
      await closeServer(running.server);
    }
  });

  const withHeaders = (url: string, headers: Record<string, string>) => fetch(url, { headers });

  it("serves a request the gateway signed for this node, path and query included", async () => {
    const url = `${node.url}/v1/data?bytes=3`;
    const response = await withHeaders(url, await signatureHeaders("fra-hotspot-1", "GET", url));
    expect(response.status).toBe(200);
    expect((await response.arrayBuffer()).byteLength).toBe(3);
  });

  it("refuses an unsigned request with 401 signature_required, before any workload work", async () => {
    const response = await fetch(`${node.url}/v1/data?bytes=3`);
    await expectError(response, 401, "signature_required");
    expect(node.workload.inFlight).toBe(0);
  });

  it("refuses a stale signature with 401 signature_stale", async () => {
    const url = `${node.url}/v1/whoami`;
    const old = await signatureHeaders("fra-hotspot-1", "GET", url, Date.now() - MAX_SIGNATURE_SKEW_MS - 1_000);
    await expectError(await withHeaders(url, old), 401, "signature_stale");
    const future = await signatureHeaders("fra-hotspot-1", "GET", url, Date.now() + MAX_SIGNATURE_SKEW_MS + 1_000);
    await expectError(await withHeaders(url, future), 401, "signature_stale");
  });

  it("refuses a signature made for another node, path or method with 401 signature_invalid", async () => {
    const url = `${node.url}/v1/data?bytes=3`;
    await expectError(await withHeaders(url, await signatureHeaders("fra-hotspot-2", "GET", url)), 401, "signature_invalid");
    await expectError(await withHeaders(url, await signatureHeaders("fra-hotspot-1", "GET", `${node.url}/v1/data?bytes=4`)), 401, "signature_invalid");
    await expectError(await withHeaders(url, await signatureHeaders("fra-hotspot-1", "POST", url)), 401, "signature_invalid");
  });

  it("refuses malformed signature headers with 401 signature_invalid", async () => {
    const url = `${node.url}/v1/whoami`;
    const good = await signatureHeaders("fra-hotspot-1", "GET", url);
    for (const bad of [
      { ...good, "x-meridian-signature": "v2=abc" },
      { ...good, "x-meridian-signature": "v1=not*base64" },
      { ...good, "x-meridian-timestamp": "yesterday" },
    ]) {
      await expectError(await withHeaders(url, bad), 401, "signature_invalid");
    }
  });

  it("refuses everything until a welcome brought a key", async () => {
    const url = `${unwelcomed.url}/v1/whoami`;
    await expectError(await fetch(url), 401, "signature_required");
    await expectError(await withHeaders(url, await signatureHeaders("fra-hotspot-2", "GET", url)), 401, "signature_invalid");
  });
});
