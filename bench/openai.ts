/**
 * OpenAI-native routing benchmark:
 * - routing cost per decision with a model requirement, cost steering and session affinity,
 *   beside today's decision (latency, no model), at 1k / 10k / 100k nodes, under the baseline
 *   policy as the gateway applies it (the client's judge per region and node slot);
 * - affinity: hit rate when the same keys come back to a stable fleet whose loads and queues
 *   moved (goal >= 95 %), and the share of keys moved when one of N nodes leaves (goal ~1/N);
 * - TTFT failover: a streaming request whose first node sends nothing, through the gateway's
 *   own proxy code (proxyToCandidates) against two local HTTP nodes: time to first byte vs the deadline.
 *
 *   node_modules/.bin/tsx bench/openai.ts [--smoke]
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { SIMULATED_GPU_MIX, modelsFor, seededRandom, simulatedPrice } from "@meridian/node-agent";
import { compilePolicy, type CompiledPolicy } from "@meridian/policy";
import { PolicyDocumentSchema, type NodeRecord, type Steering } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { FleetIndex, route, type Candidate, type RouteInput } from "@meridian/routing";
import { proxyToCandidates } from "../workers/gateway/src/proxy";
import { printTable, summarize } from "./lib/stats";

const HUBS = new Set(["iad", "sjc", "lax", "ord", "dfw", "jfk", "fra", "ams", "lhr", "cdg", "nrt", "sin", "syd", "bom", "gru", "icn", "hkg"]);
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

/** A GPU fleet with the simulator's hardware mix, models and prices, and moving loads and queues. */
function gpuFleet(size: number, seed: number): NodeRecord[] {
  const random = seededRandom(seed);
  const regions = REGIONS.flatMap((r) => (HUBS.has(r.id) ? [r.id, r.id, r.id, r.id] : [r.id]));
  const totalWeight = SIMULATED_GPU_MIX.reduce((s, e) => s + e.weight, 0);
  const out: NodeRecord[] = [];
  for (let i = 0; i < size; i++) {
    const region = regions[Math.floor(random() * regions.length)] ?? "fra";
    let x = random() * totalWeight;
    const gpu = SIMULATED_GPU_MIX.find((e) => (x -= e.weight) < 0)?.gpu ?? { class: "h100" as const, vramGb: 80, count: 8 };
    const id = `n${i.toString(36).padStart(4, "0")}-${region}-${gpu.class}`;
    const capacity = 8 + Math.floor(random() * 57);
    const load = Math.floor(random() * 60) / 64;
    const inFlight = Math.round(load * capacity);
    out.push({
      id,
      kind: "gpu",
      region,
      gpu: { ...gpu },
      capacity,
      endpoint: `https://${id}.nodes.example`,
      health: "healthy",
      healthReason: "hello",
      healthSince: NOW - 3_600_000,
      load,
      inFlight,
      free: capacity - inFlight,
      connectedAt: NOW - 3_600_000,
      seq: 1,
      models: modelsFor(gpu),
      pricePerGpuHour: simulatedPrice(id, gpu.class),
      queue: random() < 0.2 ? Math.floor(random() * 4) : 0,
      tokensPerSecond: Math.round(random() * 2000),
    });
  }
  return out;
}

interface Query {
  client: { lat: number; lon: number };
  country: string;
  key: string;
}

function queries(n: number, seed: number): Query[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, (_, i) => {
    const r = REGIONS[Math.floor(random() * REGIONS.length)] ?? REGIONS[0];
    if (r === undefined) throw new Error("empty catalog");
    return { client: { lat: r.lat + (random() - 0.5), lon: r.lon + (random() - 0.5) }, country: r.country, key: `session-${seed}-${i}` };
  });
}

type Variant = (q: Query) => Partial<RouteInput>;
const VARIANTS: Record<string, Variant> = {
  today: () => ({ requirements: {} }),
  model: () => ({ requirements: { kind: "gpu", model: "llama-3.3-70b-instruct" } }),
  "model+cost": () => ({ requirements: { kind: "gpu", model: "llama-3.3-70b-instruct" }, steer: "cost" as Steering }),
  "model+affinity": (q) => ({ requirements: { kind: "gpu", model: "llama-3.1-8b-instruct" }, affinityKey: q.key }),
  "all (model, balanced, max price, affinity)": (q) => ({ requirements: { kind: "gpu", model: "llama-3.1-8b-instruct", maxPrice: 3 }, steer: "balanced" as Steering, affinityKey: q.key }),
};

function timeVariant(index: FleetIndex, policy: CompiledPolicy, qs: readonly Query[], variant: Variant, budgetMs: number): number {
  const judges = qs.map((q) => policy.forClient({ country: q.country }).allows);
  const batch = 200;
  const samples: number[] = [];
  const started = performance.now();
  let sink = 0;
  let k = 0;
  while (performance.now() - started < budgetMs || samples.length < 5) {
    const t0 = process.hrtime.bigint();
    for (let b = 0; b < batch; b++, k++) {
      const q = qs[k % qs.length] as Query;
      const extra = variant(q);
      const decision = route(index, { client: q.client, requirements: {}, allowed: judges[k % qs.length], now: NOW, sample: 0.5, ...extra });
      sink += decision.candidates.length;
    }
    samples.push(Number(process.hrtime.bigint() - t0) / 1000 / batch);
  }
  if (sink < 0) console.log(sink);
  return summarize(samples).p50;
}

/** Same keys, same membership, moved loads and queues: how many keys stay on their node. */
function affinityHitRate(nodes: NodeRecord[], qs: readonly Query[]): number {
  const before = new FleetIndex(nodes);
  const random = seededRandom(99);
  const moved = new FleetIndex(
    nodes.map((n) => {
      const load = Math.floor(random() * 60) / 64;
      const inFlight = Math.round(load * n.capacity);
      return { ...n, load, inFlight, free: n.capacity - inFlight, queue: random() < 0.2 ? Math.floor(random() * 4) : 0, tokensPerSecond: Math.round(random() * 2000) };
    }),
  );
  let hits = 0;
  for (const q of qs) {
    const input = { client: q.client, requirements: { kind: "gpu" as const, model: "llama-3.1-8b-instruct" }, affinityKey: q.key, now: NOW };
    const a = route(before, { ...input, sample: random() }).candidates[0]?.node.id;
    const b = route(moved, { ...input, sample: random() }).candidates[0]?.node.id;
    if (a !== undefined && a === b) hits++;
  }
  return hits / qs.length;
}

/** One metro with N nodes: the share of keys that move when one node leaves. */
function movedWhenOneLeaves(n: number, keys: number): number {
  const fra = REGIONS.find((r) => r.id === "fra");
  if (fra === undefined) throw new Error("fra missing");
  const nodes = gpuFleet(n, 5).map((x, i) => ({ ...x, id: `fra-${i}`, region: "fra" }));
  const all = new FleetIndex(nodes);
  const without = new FleetIndex(nodes.slice(1));
  let moved = 0;
  for (let k = 0; k < keys; k++) {
    const input = { client: { lat: fra.lat, lon: fra.lon }, requirements: {}, affinityKey: `k${k}`, now: NOW };
    if (route(all, input).candidates[0]?.node.id !== route(without, input).candidates[0]?.node.id) moved++;
  }
  return moved / keys;
}

// ---- TTFT failover through the gateway's proxy ----------------------------------------------

function listenLocal(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

const candidate = (id: string, endpoint: string): Candidate => ({
  node: { id, kind: "gpu", region: "fra", capacity: 8, endpoint, health: "healthy", healthReason: "hello", healthSince: 0, load: 0, inFlight: 0, free: 8, connectedAt: 0, seq: 1 },
  rttMs: 1,
  score: 1,
});

async function ttftFailover(deadlineMs: number, runs: number): Promise<{ ttfb: number[]; failovers: number }> {
  // The silent node accepts, sends headers late or never, and no body byte: a stuck GPU.
  const silent = createServer(() => undefined);
  const good = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write('data: {"choices":[{"delta":{"content":"hi"}}]}\n\n');
    setTimeout(() => res.end("data: [DONE]\n\n"), 5);
  });
  const [silentUrl, goodUrl] = await Promise.all([listenLocal(silent), listenLocal(good)]);
  const ttfb: number[] = [];
  let failovers = 0;
  for (let i = 0; i < runs; i++) {
    const body = JSON.stringify({ model: "m", stream: true, messages: [{ role: "user", content: "x" }] });
    const request = new Request("http://gateway.test/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json", "content-length": String(body.length) }, body });
    const started = performance.now();
    const outcome = await proxyToCandidates(request, "/v1/chat/completions", [candidate("silent", silentUrl), candidate("good", goodUrl)], () => undefined, {
      requestId: `bench-${i}`,
      loopMark: "bench",
      sign: async () => ({}),
      headersTimeoutMs: 5000,
      body: { kind: "buffered", bytes: new TextEncoder().encode(body) },
      firstByteMs: deadlineMs,
    });
    const reader = outcome.response.body?.getReader();
    await reader?.read();
    ttfb.push(performance.now() - started);
    if (outcome.attempt > 0) failovers++;
    await reader?.cancel();
  }
  silent.closeAllConnections();
  silent.close();
  good.closeAllConnections();
  good.close();
  return { ttfb, failovers };
}

export async function runOpenAiBench(options: { smoke: boolean }): Promise<Record<string, number>> {
  const { smoke } = options;
  const policy = compilePolicy(PolicyDocumentSchema.parse(JSON.parse(readFileSync(new URL("../infra/policies/baseline.json", import.meta.url), "utf8"))), 1);
  const results: Record<string, number> = {};
  const rows: Array<Record<string, string | number>> = [];
  const qs = queries(smoke ? 500 : 5000, 11);
  // Warm the JIT on every variant first, so the first size measured does not pay for compiling.
  const warm = new FleetIndex(gpuFleet(2_000, 1));
  for (const variant of Object.values(VARIANTS)) timeVariant(warm, policy, qs, variant, smoke ? 50 : 300);
  for (const size of [1_000, 10_000, 100_000]) {
    const index = new FleetIndex(gpuFleet(size, size));
    const row: Record<string, string | number> = { nodes: size };
    for (const [name, variant] of Object.entries(VARIANTS)) {
      const us = timeVariant(index, policy, qs, variant, smoke ? 150 : 1500);
      row[name] = us.toFixed(2);
      const key = name.startsWith("all") ? "all" : name.replace("+", "_");
      results[`openai_routing_us_p50_${key}_${size / 1000}k`] = Math.round(us * 100) / 100;
    }
    rows.push(row);
  }
  printTable("Routing decision with OpenAI requirements (µs p50 per decision, baseline policy, 2 fallbacks)", rows);

  const hit = affinityHitRate(gpuFleet(10_000, 10_000), queries(smoke ? 500 : 5000, 12));
  results.affinity_hit_rate_stable_pct = Math.round(hit * 10_000) / 100;
  const moveRows: Array<Record<string, string | number>> = [];
  for (const n of [4, 8, 16]) {
    const share = movedWhenOneLeaves(n, smoke ? 2000 : 20_000);
    moveRows.push({ nodes: n, "keys moved %": (share * 100).toFixed(1), "1/N %": (100 / n).toFixed(1) });
    results[`affinity_moved_pct_one_of_${n}`] = Math.round(share * 10_000) / 100;
  }
  printTable(`Session affinity: hit rate on a stable fleet with moved loads ${(hit * 100).toFixed(2)} %; keys moved when one of N leaves`, moveRows);

  const deadline = smoke ? 200 : 1000;
  const { ttfb, failovers } = await ttftFailover(deadline, smoke ? 5 : 20);
  const s = summarize(ttfb);
  printTable("TTFT failover (primary silent, deadline as UPSTREAM_TTFT_MS)", [
    { deadlineMs: deadline, runs: ttfb.length, failovers, "ttfb p50 ms": s.p50.toFixed(1), "ttfb p99 ms": s.p99.toFixed(1), "past deadline p50 ms": (s.p50 - deadline).toFixed(1) },
  ]);
  results.ttft_failover_deadline_ms = deadline;
  results.ttft_failover_ttfb_ms_p50 = Math.round(s.p50 * 10) / 10;
  results.ttft_failover_overhead_ms_p50 = Math.round((s.p50 - deadline) * 10) / 10;
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { smoke: { type: "boolean", default: false } } });
  console.log(await runOpenAiBench({ smoke: values.smoke ?? false }));
}
