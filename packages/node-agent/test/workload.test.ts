import { request, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiErrorSchema } from "@meridian/protocol";
import { MAX_CHAT_BODY_BYTES, NodeWorkload, closeServer, createWorkloadServer, listen } from "../src/workload";
import { waitUntil } from "./fake-gateway";

const TOKEN_MS = 20;

interface Running {
  workload: NodeWorkload;
  server: Server;
  url: string;
}

async function serve(workload: NodeWorkload): Promise<Running> {
  const server = createWorkloadServer(workload);
  const port = await listen(server, "127.0.0.1", 0);
  return { workload, server, url: `http://127.0.0.1:${port}` };
}

async function expectError(response: Response, status: number, code: string): Promise<void> {
  expect(response.status).toBe(status);
  const body = ApiErrorSchema.parse(await response.json());
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
}

const chat = (url: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
  fetch(`${url}/v1/chat/completions`, {
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
    const response = await fetch(`${gpu.url}/v1/whoami`);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-served-by")).toBe("nrt-gpu-1");
    expect(await response.json()).toEqual({ node: "nrt-gpu-1", region: "nrt", kind: "gpu" });
  });

  it("lists its model OpenAI-style", async () => {
    const response = await fetch(`${gpu.url}/v1/models`);
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
    await waitUntil(() => gpu.workload.inFlight === 0, "the aborted stream to end", 2_000);
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
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gpu.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(MAX_CHAT_BODY_BYTES + 1) },
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
    const missing = await fetch(`${gpu.url}/v1/nope`);
    expect(missing.headers.get("x-served-by")).toBe("nrt-gpu-1");
    await expectError(missing, 404, "not_found");
    const wrongMethod = await fetch(`${gpu.url}/v1/chat/completions`);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    await expectError(wrongMethod, 405, "method_not_allowed");
    await expectError(await fetch(`${gpu.url}/v1/data?bytes=10`), 404, "not_found");
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
      const response = await fetch(`${hotspot.url}/v1/data?bytes=${bytes}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/octet-stream");
      expect(response.headers.get("content-length")).toBe(String(bytes));
      expect(response.headers.get("x-served-by")).toBe("ams-hotspot-1");
      expect((await response.arrayBuffer()).byteLength).toBe(bytes);
    }
  });

  it("rejects byte counts outside 0..1 GiB", async () => {
    for (const bad of ["-1", "abc", "1.5", String(1024 ** 3 + 1), ""]) {
      await expectError(await fetch(`${hotspot.url}/v1/data?bytes=${bad}`), 400, "invalid_request");
    }
    await expectError(await fetch(`${hotspot.url}/v1/data`), 400, "invalid_request");
  });

  it("answers whoami but not chat", async () => {
    expect(await (await fetch(`${hotspot.url}/v1/whoami`)).json()).toEqual({
      node: "ams-hotspot-1",
      region: "ams",
      kind: "hotspot",
    });
    await expectError(await chat(hotspot.url, { messages: [{ role: "user", content: "x" }] }), 404, "not_found");
    await expectError(await fetch(`${hotspot.url}/v1/data?bytes=1`, { method: "POST" }), 405, "method_not_allowed");
  });
});
