/**
 * Carrier offload: what the offload decision costs next to a plain hotspot decision (pure,
 * in process, 10k and 100k nodes with carriers, hotspots of every tier and GPUs), and what
 * the ledger costs per request end to end: the same hotspot download through the gateway in
 * bare workerd, once as a plain hotspot request and once as a carrier request that is
 * offloaded, counted and written to the partner's ledger. The ledger must then hold exactly
 * the requests and bytes the load generator received.
 */
import { readFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seededRandom, silentLogger, startSimulator, type PlannedNode } from "@meridian/node-agent";
import { compilePolicy, type CompiledPolicy } from "@meridian/policy";
import { PolicyDocumentSchema, type CarrierPartner, type NodeRecord } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { DialBook, FleetIndex, chooseOffload, route, subscriberBucket, type SlotPolicy } from "@meridian/routing";
import { freePort } from "../scripts/dev-gateway";
import { printTable, summarize } from "./lib/stats";
import { benchGpu, createUpstreamServer } from "./lib/upstream";
import { cpuSeconds } from "./lib/sysstat";
import { GATEWAY_DURABLE_OBJECTS, bundleGateway, startWorkerd, BENCH_GATEWAY_VARS, benchTenantAuth } from "./lib/workerd";

const SECRETS = BENCH_GATEWAY_VARS;
const TOKYO = { "x-client-lat": "35.6762", "x-client-lon": "139.6503", "x-client-country": "JP" };
const PARTNERS = 4;
let sink = 0;

function makePartners(random: () => number): CarrierPartner[] {
  return Array.from({ length: PARTNERS }, (_, p) => ({
    id: `tel-${p}`,
    name: `Telecom ${p}`,
    regions: Array.from(new Set(Array.from({ length: 40 }, () => REGIONS[Math.floor(random() * REGIONS.length)]?.id ?? "nrt"))),
    offload: { maxHotspotKm: 300, minTier: 2, congestionThreshold: 0.7, hysteresis: 0.2, dial: { base: 40, max: 90 } },
  }));
}

/** 10 % carrier backbone nodes (spread over the partners), 50 % hotspots of every tier, 40 % GPUs. */
function makeFleet(size: number, partners: CarrierPartner[], random: () => number): NodeRecord[] {
  return Array.from({ length: size }, (_, i): NodeRecord => {
    const region = REGIONS[Math.floor(random() * REGIONS.length)]?.id ?? "nrt";
    const base = { id: `n-${i}`, region, capacity: 32, endpoint: `http://127.0.0.1:1/n/${i}`, health: "healthy" as const, healthReason: "hello", healthSince: 0, load: random() * 0.8, inFlight: 0, free: 32, connectedAt: 0, seq: 1 };
    const roll = random();
    if (roll < 0.1) return { ...base, kind: "carrier", partner: partners[i % partners.length]?.id ?? "tel-0", congestion: random() };
    if (roll < 0.6) return { ...base, kind: "hotspot", tier: 1 + Math.floor(random() * 5), maxMbps: 300 };
    return { ...base, kind: "gpu", gpu: { class: "h100", vramGb: 80, count: 8 } };
  });
}

function slotPolicy(policy: CompiledPolicy, country: string): SlotPolicy {
  return policy.forClient({ country }).allows;
}

interface Query {
  client: { lat: number; lon: number };
  country: string;
  partner: CarrierPartner;
  bucket: number;
}

function decisionCost(size: number, policy: CompiledPolicy, budgetMs: number): { offloadP50: number; offloadP99: number; plainP50: number; offloadShare: number } {
  const random = seededRandom(size);
  const partners = makePartners(random);
  const index = new FleetIndex(makeFleet(size, partners, random));
  const queries: Query[] = Array.from({ length: 4096 }, (_, i) => {
    const partner = partners[i % partners.length] ?? (partners[0] as CarrierPartner);
    const region = REGIONS.find((r) => r.id === partner.regions[Math.floor(random() * partner.regions.length)]) ?? (REGIONS[0] as (typeof REGIONS)[number]);
    return { client: { lat: region.lat + (random() - 0.5), lon: region.lon + (random() - 0.5) }, country: region.country, partner, bucket: subscriberBucket(`sub-${i}`) };
  });
  const dials = new DialBook();
  let offloaded = 0;
  const offload = (q: Query) => {
    const d = chooseOffload(index, { client: q.client, partner: q.partner, bucket: q.bucket, dials, allowed: slotPolicy(policy, q.country) });
    if (d.route === "offload") offloaded++;
    return d.candidates.length;
  };
  const plain = (q: Query) => route(index, { client: q.client, requirements: { kind: "hotspot" }, allowed: slotPolicy(policy, q.country) }).candidates.length;
  const time = (run: (q: Query) => number) => {
    for (let i = 0; i < 2000; i++) sink ^= run(queries[i % queries.length] as Query);
    const samples: number[] = [];
    const deadline = performance.now() + budgetMs;
    for (let i = 0; performance.now() < deadline; i++) {
      const t0 = process.hrtime.bigint();
      sink ^= run(queries[i % queries.length] as Query);
      samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    return summarize(samples);
  };
  const o = time(offload);
  const share = offloaded / Math.max(1, o.n + 2000);
  const p = time(plain);
  return { offloadP50: o.p50, offloadP99: o.p99, plainP50: p.p50, offloadShare: share };
}

/** Closed loop with `connections` keep-alive sockets for `seconds`; counts answers and body bytes. */
async function closedLoop(url: string, headers: Record<string, string>, connections: number, seconds: number): Promise<{ rps: number; requests: number; bytes: number; latencyUs: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL(url);
  const deadline = performance.now() + seconds * 1000;
  let requests = 0;
  let bytes = 0;
  const latencyUs: number[] = [];
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = httpRequest({ host: target.hostname, port: target.port, path: target.pathname + target.search, headers, agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`${url}: status ${res.statusCode}`));
        res.on("data", (chunk: Buffer) => (bytes += chunk.byteLength));
        res.on("end", () => {
          requests++;
          latencyUs.push(Number(process.hrtime.bigint() - started) / 1000);
          resolve();
        });
      });
      req.on("error", reject);
      req.end();
    });
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) await one();
    }),
  );
  agent.destroy();
  return { rps: requests / ((performance.now() - startedAt) / 1000), requests, bytes, latencyUs };
}

async function ledgerOverhead(smoke: boolean): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), "meridian-bench-offload-"));
  const stops: (() => Promise<void> | void)[] = [];
  try {
    bundleGateway(dir);
    const gateway = await startWorkerd({ dir, port: await freePort(), module: "index.js", text: { ...SECRETS }, durableObjects: GATEWAY_DURABLE_OBJECTS });
    stops.push(() => gateway.stop());
    const admin = { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` };
    const current = await fetch(`${gateway.url}/admin/carriers`, { headers: admin });
    const put = await fetch(`${gateway.url}/admin/carriers/bench-tel`, {
      method: "PUT",
      headers: { ...admin, "content-type": "application/json", "if-match": current.headers.get("etag") ?? "", "x-meridian-reason": "bench" },
      body: JSON.stringify({ name: "Bench Telecom", regions: ["nrt"], offload: { maxHotspotKm: 50, minTier: 1, congestionThreshold: 0.7, hysteresis: 0.2, dial: { base: 100, max: 100 } } }),
    });
    if (!put.ok) throw new Error(`partner setup: ${put.status} ${await put.text()}`);
    const plan: PlannedNode[] = [
      { id: "bench-nrt-bb", kind: "carrier", region: "nrt", capacity: 1000, partner: "bench-tel" },
      { id: "bench-nrt-hs", kind: "hotspot", region: "nrt", capacity: 1000, maxMbps: 1000 },
    ];
    // The nodes' answers come from the bench's upstream (no signature check, as in the gateway part).
    const upstreamPort = await freePort();
    const upstream = createUpstreamServer((id) => plan.find((p) => p.id === id) ?? benchGpu(id));
    await new Promise<void>((resolve) => upstream.listen(upstreamPort, "127.0.0.1", resolve));
    stops.push(() => {
      upstream.closeAllConnections();
      upstream.close();
    });
    const sim = await startSimulator({ gatewayUrl: gateway.url, adminToken: SECRETS.ADMIN_TOKEN, nodes: 0, plan, publicUrl: `http://127.0.0.1:${upstreamPort}`, logger: silentLogger, nodeLogger: () => silentLogger });
    stops.push(() => sim.close({ drain: false }));
    const plainHeaders = { ...(await benchTenantAuth(gateway.url)), ...TOKYO, "x-meridian-kind": "hotspot" };
    const carrierHeaders = { ...plainHeaders, "x-meridian-carrier": "bench-tel", "x-meridian-subscriber": "bench-subscriber" };
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${gateway.url}/v1/data?bytes=1024`, { headers: carrierHeaders });
      await res.arrayBuffer();
      if (res.headers.get("x-meridian-route") === "offload") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = `${gateway.url}/v1/data?bytes=1024`;
    const seconds = smoke ? 2 : 4;
    const rounds = smoke ? 1 : 3;
    await closedLoop(url, plainHeaders, 16, 1);
    const usageUrl = `${gateway.url}/admin/offload/usage?partner=bench-tel&from=${new Date(Date.now() - 3600_000).toISOString()}&to=${new Date(Date.now() + 7200_000).toISOString()}`;
    const before = await ledgerTotals(usageUrl, admin);
    // Plain and carrier take turns (A B A B): the machine's other load hits both alike.
    const measure = async (headers: Record<string, string>) => {
      const cpuBefore = cpuSeconds(gateway.process.pid);
      const run = await closedLoop(url, headers, 16, seconds);
      return { ...run, cpuUsPerRequest: ((cpuSeconds(gateway.process.pid) - cpuBefore) * 1e6) / run.requests };
    };
    const plainRuns: Awaited<ReturnType<typeof measure>>[] = [];
    const carrierRuns: Awaited<ReturnType<typeof measure>>[] = [];
    for (let round = 0; round < rounds; round++) {
      plainRuns.push(await measure(plainHeaders));
      carrierRuns.push(await measure(carrierHeaders));
    }
    const carrierRequests = carrierRuns.reduce((n, r) => n + r.requests, 0);
    const carrierBytes = carrierRuns.reduce((n, r) => n + r.bytes, 0);
    // Let the last batches land, then compare with what the load generator received.
    let after = await ledgerTotals(usageUrl, admin);
    for (let i = 0; i < 50 && after.requests - before.requests < carrierRequests; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await ledgerTotals(usageUrl, admin);
    }
    const median = (values: number[]) => summarize(values).p50;
    const plainLatency = summarize(plainRuns.flatMap((r) => r.latencyUs));
    const carrierLatency = summarize(carrierRuns.flatMap((r) => r.latencyUs));
    const paired = plainRuns.map((p, i) => {
      const c = carrierRuns[i] ?? p;
      return { wall: 1e6 / c.rps - 1e6 / p.rps, cpu: c.cpuUsPerRequest - p.cpuUsPerRequest };
    });
    const results = {
      offload_plain_rps: Math.round(median(plainRuns.map((r) => r.rps))),
      offload_carrier_rps: Math.round(median(carrierRuns.map((r) => r.rps))),
      offload_ledger_overhead_us_per_request: Math.round(median(paired.map((x) => x.wall))),
      offload_ledger_cpu_us_per_request: Math.round(median(paired.map((x) => x.cpu))),
      offload_ledger_added_latency_us_p50: Math.round(carrierLatency.p50 - plainLatency.p50),
      offload_ledger_requests_missing: carrierRequests - (after.requests - before.requests),
      offload_ledger_bytes_missing: carrierBytes - (after.bytes - before.bytes),
    };
    printTable(`ledger overhead (16 connections, 1 KiB offloaded downloads, bare workerd, ${rounds} interleaved rounds)`, [
      { path: "plain hotspot request", rps: results.offload_plain_rps, cpu_us_per_req: Math.round(median(plainRuns.map((r) => r.cpuUsPerRequest))), p50_us: Math.round(plainLatency.p50), p99_us: Math.round(plainLatency.p99) },
      { path: "carrier request + ledger", rps: results.offload_carrier_rps, cpu_us_per_req: Math.round(median(carrierRuns.map((r) => r.cpuUsPerRequest))), p50_us: Math.round(carrierLatency.p50), p99_us: Math.round(carrierLatency.p99) },
    ]);
    console.log(`[bench] ledger overhead per round (wall µs / CPU µs per request): ${paired.map((x) => `${Math.round(x.wall)} / ${Math.round(x.cpu)}`).join(", ")}`);
    console.log(`[bench] ledger: ${carrierRequests} requests / ${carrierBytes} bytes received by the clients; ledger counted ${after.requests - before.requests} / ${after.bytes - before.bytes}`);
    return results;
  } finally {
    for (const stop of stops.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function ledgerTotals(url: string, headers: Record<string, string>): Promise<{ requests: number; bytes: number }> {
  const body = (await (await fetch(url, { headers })).json()) as { totals?: Record<string, { requests: number; bytes: number }> };
  const t = body.totals ?? {};
  return { requests: (t.offload?.requests ?? 0) + (t.backbone?.requests ?? 0), bytes: (t.offload?.bytes ?? 0) + (t.backbone?.bytes ?? 0) };
}

export async function runOffloadBench(options: { smoke: boolean }): Promise<Record<string, number>> {
  const policy = compilePolicy(PolicyDocumentSchema.parse(JSON.parse(readFileSync(new URL("../infra/policies/baseline.json", import.meta.url), "utf8"))), 1);
  const results: Record<string, number> = {};
  const rows = [];
  for (const size of options.smoke ? [10_000] : [10_000, 100_000]) {
    const cost = decisionCost(size, policy, options.smoke ? 300 : 2000);
    const label = size >= 100_000 ? "100k" : "10k";
    results[`offload_decision_us_p50_${label}`] = Math.round(cost.offloadP50 * 10) / 10;
    results[`offload_decision_us_p99_${label}`] = Math.round(cost.offloadP99 * 10) / 10;
    rows.push({ nodes: size, offload_p50_us: cost.offloadP50.toFixed(1), offload_p99_us: cost.offloadP99.toFixed(1), plain_hotspot_p50_us: cost.plainP50.toFixed(1), offloaded: `${(cost.offloadShare * 100).toFixed(0)} %` });
  }
  printTable("offload decision (4 partners, baseline policy, 10 % carriers / 50 % hotspots)", rows);
  Object.assign(results, await ledgerOverhead(options.smoke));
  console.log(`[bench] sink ${sink & 1}`);
  return results;
}
