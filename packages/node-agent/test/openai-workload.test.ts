import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importRequestKey, signRequest } from "@meridian/protocol";
import { GPU_VRAM_GB, SIMULATED_GPU_MIX, modelsFor, planFleet } from "../src/fleet";
import { RequestVerifier } from "../src/request-auth";
import { NATURAL_ANSWER_TOKENS, NodeWorkload, closeServer, createWorkloadServer, listen } from "../src/workload";
import { waitUntil } from "./fake-gateway";

const REQUEST_KEY = randomBytes(32).toString("base64url");
const signingKey = importRequestKey(REQUEST_KEY);
const NODE = "nrt-h100-multi";
const MODELS = ["llama-3.1-8b-instruct", "llama-3.3-70b-instruct"];

async function chat(url: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  const target = `${url}/v1/chat/completions`;
  const signature = await signRequest(await signingKey, "POST", "/v1/chat/completions", NODE, Date.now());
  return fetch(target, { method: "POST", headers: { "content-type": "application/json", ...signature }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
}

async function events(response: Response): Promise<Array<Record<string, unknown>>> {
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((e) => e.startsWith("data: ") && e !== "data: [DONE]")
    .map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);
}

describe("simulated fleet models", () => {
  it("gives every GPU class several models, and large ones only where the VRAM fits", () => {
    for (const { gpu } of SIMULATED_GPU_MIX) {
      const models = modelsFor(gpu);
      expect(models.length).toBeGreaterThanOrEqual(2);
      if (models.includes("llama-3.3-70b-instruct")) expect(gpu.vramGb).toBeGreaterThanOrEqual(80);
      if (models.includes("deepseek-v3")) expect(gpu.vramGb * gpu.count).toBeGreaterThanOrEqual(640);
    }
    expect(modelsFor({ class: "rtx4090", vramGb: GPU_VRAM_GB.rtx4090, count: 1 })).not.toContain("llama-3.3-70b-instruct");
    expect(modelsFor({ class: "h100", vramGb: 80, count: 8 })).toContain("llama-3.3-70b-instruct");
    const planned = planFleet({ nodes: 300, seed: 7, prefix: "sim" }).filter((n) => n.kind === "gpu");
    expect(planned.every((n) => (n.models?.length ?? 0) >= 2 && (n.pricePerGpuHour ?? 0) > 0)).toBe(true);
  });
});

describe("GPU workload, OpenAI semantics", () => {
  let workload: NodeWorkload;
  let server: ReturnType<typeof createWorkloadServer>;
  let url = "";
  beforeAll(async () => {
    workload = new NodeWorkload({ id: NODE, kind: "gpu", region: "nrt", gpu: { class: "h100", vramGb: 80, count: 1 }, capacity: 1, models: MODELS }, { tokenMs: 10 });
    const verifier = new RequestVerifier(NODE);
    verifier.useKey(REQUEST_KEY);
    server = createWorkloadServer(workload, verifier);
    url = `http://127.0.0.1:${await listen(server, "127.0.0.1", 0)}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await closeServer(server);
  });

  it("answers with the requested model, refuses one it does not serve with model_not_found", async () => {
    const ok = (await (await chat(url, { model: MODELS[1], messages: [{ role: "user", content: "hi" }], max_tokens: 2 })).json()) as { model: string };
    expect(ok.model).toBe(MODELS[1]);
    const refused = await chat(url, { model: "gpt-9", messages: [{ role: "user", content: "hi" }] });
    expect(refused.status).toBe(404);
    expect(await refused.json()).toMatchObject({ error: { code: "model_not_found", type: "invalid_request_error", param: "model" } });
  });

  it("finishes with stop at the answer's natural end and length at max_tokens; usage matches", async () => {
    const natural = (await (await chat(url, { model: MODELS[0], messages: [{ role: "user", content: "tell me" }] })).json()) as {
      choices: Array<{ finish_reason: string; message: { content: string } }>;
      usage: { completion_tokens: number };
    };
    expect(natural.choices[0]?.finish_reason).toBe("stop");
    expect(natural.usage.completion_tokens).toBeGreaterThanOrEqual(NATURAL_ANSWER_TOKENS.min);
    expect(natural.choices[0]?.message.content.split(" ")).toHaveLength(natural.usage.completion_tokens);
    const cut = (await (await chat(url, { model: MODELS[0], messages: [{ role: "user", content: "tell me" }], max_tokens: 3 })).json()) as typeof natural;
    expect(cut.choices[0]?.finish_reason).toBe("length");
    expect(cut.usage.completion_tokens).toBe(3);
  });

  it("streams a usage chunk only when stream_options.include_usage asks", async () => {
    const withUsage = await events(await chat(url, { model: MODELS[0], messages: [{ role: "user", content: "s" }], stream: true, stream_options: { include_usage: true }, max_tokens: 4 }));
    const last = withUsage.at(-1);
    expect(last).toMatchObject({ choices: [], usage: { completion_tokens: 4 } });
    expect(withUsage.slice(0, -1).every((e) => e.usage === null)).toBe(true);
    const without = await events(await chat(url, { model: MODELS[0], messages: [{ role: "user", content: "s" }], stream: true, max_tokens: 4 }));
    expect(without.some((e) => "usage" in e)).toBe(false);
    expect(without.at(-1)).toMatchObject({ choices: [{ finish_reason: "length" }] });
  });

  it("queues requests beyond its generation slots and reports the depth and the token rate", async () => {
    const body = { model: MODELS[0], messages: [{ role: "user", content: "q" }], max_tokens: 20 };
    const answers = [chat(url, body), chat(url, body), chat(url, body)];
    await waitUntil(() => workload.gpuSignals()?.queue === 2, "two requests queued behind the one slot", 2_000);
    await Promise.all((await Promise.all(answers)).map((r) => r.json()));
    expect(workload.gpuSignals()?.queue).toBe(0);
    await waitUntil(() => (workload.gpuSignals()?.tokensPerSecond ?? 0) > 0, "a token rate", 3_000);
    console.log(`[workload] tokens/s reported after the burst: ${workload.gpuSignals()?.tokensPerSecond}`);
  });
});
