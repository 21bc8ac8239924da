/**
 * The official `openai` client against Meridian, end to end: wrangler dev, a simulated fleet of
 * GPU nodes serving several models each, and the SDK given nothing but a base URL, a key and the
 * dev geo headers (the stand-in for request.cf). No x-meridian-* header anywhere.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { modelsFor, silentLogger, simulatedPrice, startSimulator, type PlannedNode, type SimulatorHandle } from "@meridian/node-agent";
import type { GpuHardware } from "@meridian/protocol";
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDevVars, freePort, startGateway, type LocalGateway } from "../scripts/dev-gateway";
import { createTenantKey } from "./support/tenants";

const CITIES = {
  Lagos: { "x-client-lat": "6.5244", "x-client-lon": "3.3792", "x-client-country": "NG" },
  Tokyo: { "x-client-lat": "35.6762", "x-client-lon": "139.6503", "x-client-country": "JP" },
  Frankfurt: { "x-client-lat": "50.1109", "x-client-lon": "8.6821", "x-client-country": "DE" },
} as const;
const TEHRAN = { "x-client-lat": "35.6892", "x-client-lon": "51.389", "x-client-country": "IR" };

const gpuNode = (id: string, region: string, gpu: GpuHardware): PlannedNode => ({ id, kind: "gpu", region, gpu, capacity: 8, models: modelsFor(gpu), pricePerGpuHour: simulatedPrice(id, gpu.class) });
const PLAN: PlannedNode[] = [
  gpuNode("oai-los-4090", "los", { class: "rtx4090", vramGb: 24, count: 1 }),
  gpuNode("oai-nrt-h100", "nrt", { class: "h100", vramGb: 80, count: 8 }),
  gpuNode("oai-nrt-l40s", "nrt", { class: "l40s", vramGb: 48, count: 4 }),
  gpuNode("oai-fra-b200", "fra", { class: "b200", vramGb: 192, count: 8 }),
  gpuNode("oai-fra-a100", "fra", { class: "a100", vramGb: 80, count: 8 }),
  { id: "oai-los-hotspot", kind: "hotspot", region: "los", capacity: 16 },
];
const ALL_MODELS = [...new Set(PLAN.flatMap((n) => n.models ?? []))].sort();

let gateway: LocalGateway;
let sim: SimulatorHandle;
let stateDir: string;
let adminToken: string;

/** This file's tenant key (made in beforeAll): what an OpenAI client sends as apiKey. */
let apiKey = "";
const clientFrom = (headers: Record<string, string>) => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, defaultHeaders: headers });

/** The models each node advertises, as the gateway's own fleet view has them. */
async function fleetModels(): Promise<Map<string, string[]>> {
  const res = await fetch(`${gateway.url}/admin/fleet`, { headers: { authorization: `Bearer ${adminToken}` } });
  const body = (await res.json()) as { nodes: Array<{ id: string; models?: string[]; health: string }> };
  return new Map(body.nodes.filter((n) => n.health === "healthy").map((n) => [n.id, n.models ?? []]));
}

beforeAll(async () => {
  const { secrets } = ensureDevVars();
  adminToken = secrets.ADMIN_TOKEN;
  stateDir = mkdtempSync(join(tmpdir(), "meridian-openai-"));
  gateway = await startGateway({ port: await freePort(), persistTo: stateDir, output: "ignore" });
  apiKey = (await createTenantKey(gateway.url, adminToken, { id: "e2e-openai" })).key;
  sim = await startSimulator({ gatewayUrl: gateway.url, adminToken, nodes: 0, plan: PLAN, tokenMs: 3, heartbeatMs: 1000, logger: silentLogger, nodeLogger: () => silentLogger });
  // Until the snapshot the gateway routes by has every node with its models.
  const deadline = performance.now() + 30_000;
  for (;;) {
    const listed = await clientFrom(CITIES.Frankfurt)
      .models.list()
      .then((page) => page.data.map((m) => m.id))
      .catch((): string[] => []);
    if (ALL_MODELS.every((m) => listed.includes(m))) break;
    if (performance.now() > deadline) throw new Error(`models did not all appear in 30 s (listed: ${listed.join(", ")})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 120_000);

afterAll(async () => {
  await sim?.close();
  await gateway?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("the official OpenAI client against Meridian", () => {
  it("lists the fleet's models, with where they run in the meridian extension", async () => {
    const page = await clientFrom(CITIES.Tokyo).models.list();
    const ids = page.data.map((m) => m.id);
    console.log(`[openai e2e] models.list(): ${ids.join(", ")}`);
    expect(ids).toEqual(ALL_MODELS);
    expect(ids.length).toBeGreaterThanOrEqual(4);
    const large = page.data.find((m) => m.id === "llama-3.3-70b-instruct") as unknown as { meridian: { nodes: number; regions: string[]; gpuClasses: string[] } };
    // 70B-class only where 80 GB+ cards are: never the RTX 4090 or the L40S.
    expect(large.meridian.gpuClasses).toEqual(["a100", "b200", "h100"]);
    expect(large.meridian.regions).toEqual(["fra", "nrt"]);
  });

  for (const [city, headers] of Object.entries(CITIES)) {
    it(`from ${city}, with no Meridian header, streams and completes a chat with every listed model on a node that serves it`, async () => {
      const client = clientFrom(headers);
      const advertised = await fleetModels();
      const models = (await client.models.list()).data.map((m) => m.id);
      expect(models.length).toBeGreaterThanOrEqual(4);
      const servedBy: string[] = [];
      for (const model of models) {
        const { data: completion, response } = await client.chat.completions.create({ model, messages: [{ role: "user", content: `hello from ${city}` }], max_tokens: 6 }).withResponse();
        const node = response.headers.get("x-meridian-node") ?? "";
        expect(advertised.get(node)).toContain(model);
        expect(completion.model).toBe(model);
        expect(completion.choices[0]?.message.content?.length ?? 0).toBeGreaterThan(0);
        expect(completion.choices[0]?.finish_reason).toBe("length");
        expect(completion.usage?.completion_tokens).toBe(6);

        const { data: stream, response: streamed } = await client.chat.completions
          .create({ model, messages: [{ role: "user", content: `stream from ${city}` }], stream: true, stream_options: { include_usage: true } })
          .withResponse();
        const streamNode = streamed.headers.get("x-meridian-node") ?? "";
        expect(advertised.get(streamNode)).toContain(model);
        let content = "";
        let usage: OpenAI.CompletionUsage | null | undefined;
        let finish: string | null | undefined;
        for await (const chunk of stream) {
          content += chunk.choices[0]?.delta.content ?? "";
          finish = chunk.choices[0]?.finish_reason ?? finish;
          if (chunk.usage) usage = chunk.usage;
        }
        expect(content.length).toBeGreaterThan(0);
        expect(finish).toBe("stop");
        expect(usage?.completion_tokens).toBe(content.trim().split(/\s+/).length);
        servedBy.push(`${model}@${node}/${streamNode}`);
      }
      console.log(`[openai e2e] ${city}: ${servedBy.join(", ")}`);
    });
  }

  it("surfaces a policy refusal with status, OpenAI type and code, and the rule", async () => {
    const err = await clientFrom(TEHRAN)
      .chat.completions.create({ model: "llama-3.1-8b-instruct", messages: [{ role: "user", content: "hi" }] })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    if (!(err instanceof APIError)) return;
    expect(err.status).toBe(451);
    expect(err.code).toBe("blocked_by_policy");
    expect(err.type).toBe("permission_error");
    const body = err.error as { rule?: string; requestId?: string; policyVersion?: number };
    expect(body.rule).toBe("embargo-clients");
    expect(typeof body.requestId).toBe("string");
    expect(typeof body.policyVersion).toBe("number");
  });

  it("answers an unknown model with 404 model_not_found, param model", async () => {
    const err = await clientFrom(CITIES.Lagos)
      .chat.completions.create({ model: "gpt-imaginary", messages: [{ role: "user", content: "hi" }] })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    if (!(err instanceof APIError)) return;
    expect(err.status).toBe(404);
    expect(err.code).toBe("model_not_found");
    expect(err.param).toBe("model");
  });
});
