/**
 * The whole path with real processes and sockets on 127.0.0.1: wrangler dev (workerd with
 * local Durable Objects), real meridian-node agents over WebSockets, real HTTP clients.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDevVars, freePort, startGateway, type LocalGateway } from "../scripts/dev-gateway";
import { createTenantKey } from "./support/tenants";
import { startAgent, stopAgent, type AgentProcess, type AgentSpec } from "./support/agents";

/** A Tokyo client; beforeAll adds this file's tenant key (test/support/tenants.ts). */
const TOKYO: Record<string, string> = { "x-client-lat": "35.6762", "x-client-lon": "139.6503", "x-client-country": "JP" };
const H100 = { class: "h100", vramGb: 80, count: 8 };

const FLEET: AgentSpec[] = [
  { id: "e2e-nrt-h100", region: "nrt", kind: "gpu", gpu: H100 },
  { id: "e2e-kix-h100", region: "kix", kind: "gpu", gpu: H100 },
  { id: "e2e-nrt-4090", region: "nrt", kind: "gpu", gpu: { class: "rtx4090", vramGb: 24, count: 1 } },
  { id: "e2e-fra-b200", region: "fra", kind: "gpu", gpu: { class: "b200", vramGb: 192, count: 8 }, tokenMs: 40 },
  { id: "e2e-nrt-hotspot", region: "nrt", kind: "hotspot" },
  { id: "e2e-icn-hotspot", region: "icn", kind: "hotspot" },
];

let gateway: LocalGateway;
let stateDir: string;
const agents = new Map<string, AgentProcess>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function routedNode(headers: Record<string, string>): Promise<string | null> {
  const res = await fetch(`${gateway.url}/route`, { headers });
  const body = (await res.json()) as { node: { id: string } | null };
  return body.node?.id ?? null;
}

/** Polls /route until `predicate` holds; returns the milliseconds it took. */
async function until(headers: Record<string, string>, predicate: (node: string | null) => boolean, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let last: string | null = null;
  while (performance.now() - started < timeoutMs) {
    last = await routedNode(headers);
    if (predicate(last)) return performance.now() - started;
    await sleep(25);
  }
  throw new Error(`condition not met within ${timeoutMs} ms (last routed node: ${last})`);
}

/** Polls /route until `id` is among the fallbacks of the decision for `headers`. */
async function fallbackKnown(headers: Record<string, string>, id: string, timeoutMs: number): Promise<void> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    const body = (await (await fetch(`${gateway.url}/route`, { headers })).json()) as { fallbacks?: { id: string }[] };
    if (body.fallbacks?.some((f) => f.id === id)) return;
    await sleep(25);
  }
  throw new Error(`${id} not among the fallbacks within ${timeoutMs} ms`);
}

beforeAll(async () => {
  const { secrets } = ensureDevVars();
  stateDir = mkdtempSync(join(tmpdir(), "meridian-e2e-"));
  const startedAt = performance.now();
  gateway = await startGateway({ port: await freePort(), persistTo: stateDir, output: "ignore" });
  Object.assign(TOKYO, (await createTenantKey(gateway.url, secrets.ADMIN_TOKEN, { id: "e2e-gateway" })).auth);
  console.log(`[e2e] gateway ready in ${((performance.now() - startedAt) / 1000).toFixed(1)} s at ${gateway.url}`);
  const started = await Promise.all(FLEET.map((spec) => startAgent(gateway.url, secrets.ADMIN_TOKEN, spec)));
  for (const agent of started) agents.set(agent.id, agent);
  // Every agent has been welcomed; wait until the gateway's snapshot routes to the last one.
  const routedIn = [
    await until({ ...TOKYO, "x-meridian-kind": "hotspot" }, (n) => n === "e2e-nrt-hotspot", 30_000),
    await until({ ...TOKYO, "x-meridian-gpu": "b200" }, (n) => n === "e2e-fra-b200", 30_000),
    await until({ ...TOKYO, "x-meridian-gpu": "h100" }, (n) => n === "e2e-nrt-h100", 30_000),
  ];
  console.log(`[e2e] fleet routable after ${routedIn.map((ms) => ms.toFixed(0)).join(" + ")} ms`);
});

afterAll(async () => {
  for (const agent of agents.values()) stopAgent(agent);
  await gateway?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("gateway end to end", () => {
  it("serves a client in Tokyo from a Tokyo node", async () => {
    const res = await fetch(`${gateway.url}/v1/whoami`, { headers: { ...TOKYO, "x-meridian-gpu": "h100" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-meridian-node")).toBe("e2e-nrt-h100");
    expect(res.headers.get("x-meridian-region")).toBe("nrt");
    expect(res.headers.get("x-meridian-route")).toBe("primary");
    expect(await res.json()).toEqual({ node: "e2e-nrt-h100", region: "nrt", kind: "gpu" });
  });

  it("never sends a B200 request to the nearer RTX 4090 node", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${gateway.url}/v1/whoami`, { headers: { ...TOKYO, "x-meridian-gpu": "b200" } });
      expect(((await res.json()) as { node: string }).node).toBe("e2e-fra-b200");
    }
  });

  it("streams a chat completion through the gateway as several chunks over time", async () => {
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...TOKYO, "x-meridian-gpu": "b200", "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "count to eight" }], stream: true, max_tokens: 8 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body?.getReader();
    if (!reader) throw new Error("no body");
    const decoder = new TextDecoder();
    const arrivals: number[] = [];
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(performance.now());
      text += decoder.decode(value, { stream: true });
    }
    const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
    expect(events.at(-1)).toBe("data: [DONE]");
    expect(events.length).toBeGreaterThanOrEqual(9);
    // Not buffered: chunks arrived separately, spread over the ~320 ms of generation.
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    expect((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThan(150);
  });

  it("moves the next request to the next-nearest node at once when the serving agent is killed -9", async () => {
    const victim = agents.get("e2e-nrt-h100");
    if (!victim) throw new Error("missing agent");
    // Precondition: the routing isolate knows the fallback (its copy of the fleet comes through
    // a replica, so a node that joined last may be a moment behind the others).
    await fallbackKnown({ ...TOKYO, "x-meridian-gpu": "h100" }, "e2e-kix-h100", 30_000);
    victim.process.kill("SIGKILL");
    const killedAt = performance.now();
    // The very next request: either the snapshot already knows, or the in-band retry saves it.
    const res = await fetch(`${gateway.url}/v1/whoami`, { headers: { ...TOKYO, "x-meridian-gpu": "h100" } });
    const servedAfter = performance.now() - killedAt;
    expect(res.status).toBe(200);
    expect(res.headers.get("x-meridian-node")).toBe("e2e-kix-h100");
    const outOfRouting = await until({ ...TOKYO, "x-meridian-gpu": "h100" }, (n) => n === "e2e-kix-h100", 10_000);
    const total = performance.now() - killedAt;
    console.log(`[e2e] kill -9: next request served by the next-nearest node after ${servedAfter.toFixed(0)} ms; out of routing after ${total.toFixed(0)} ms (poll ${outOfRouting.toFixed(0)} ms)`);
    // The goal (1 s) lives in the failover benchmark; here ~10x, for a busy machine.
    expect(total).toBeLessThan(10_000);
  });

  it("takes a frozen (SIGSTOP) agent out of routing within a few heartbeat intervals", { timeout: 120_000 }, async () => {
    const frozen = agents.get("e2e-nrt-hotspot");
    if (!frozen) throw new Error("missing agent");
    const headers = { ...TOKYO, "x-meridian-kind": "hotspot" };
    expect(await routedNode(headers)).toBe("e2e-nrt-hotspot");
    frozen.process.kill("SIGSTOP");
    const detectedMs = await until(headers, (n) => n === "e2e-icn-hotspot", 30_000);
    console.log(`[e2e] SIGSTOP: out of routing after ${detectedMs.toFixed(0)} ms at 1 s heartbeats`);
    frozen.process.kill("SIGCONT");
    const backMs = await until(headers, (n) => n === "e2e-nrt-hotspot", 30_000);
    console.log(`[e2e] SIGCONT: back in routing after ${backMs.toFixed(0)} ms`);
  });

  it("keeps serving the rest of the fleet when a client sends bad requirement headers", async () => {
    const bad = await fetch(`${gateway.url}/v1/whoami`, { headers: { ...TOKYO, "x-meridian-min-vram-gb": "-3" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_requirements");
    const good = await fetch(`${gateway.url}/v1/whoami`, { headers: { ...TOKYO, "x-meridian-gpu": "b200" } });
    expect(good.status).toBe(200);
  });
});
