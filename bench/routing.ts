/**
 * Routing benchmark: one full routing decision as the gateway makes it (policy judge for the
 * client, policy filter, ranking with 2 fallbacks), against a brute-force scan of the same fleet.
 *
 *   node_modules/.bin/tsx bench/routing.ts            full run (~30 s)
 *   node_modules/.bin/tsx bench/routing.ts --smoke    quick run (all keys, smaller samples)
 */
import { seededRandom } from "@meridian/node-agent";
import { readFileSync } from "node:fs";
import { compilePolicy, type ClientContext, type CompiledPolicy, type NodeJudge } from "@meridian/policy";
import { REGIONS, estimateRttMs, getRegion, greatCircleKm, type Region } from "@meridian/regions";
import { machineInfo, printTable, summarize } from "./lib/stats";
import { PolicyDocumentSchema, type GpuClass, type GpuHardware, type NodeRecord, type Requirements } from "@meridian/protocol";
import {
  DEFAULT_FALLBACKS,
  FleetIndex,
  LOAD_PENALTY_MS,
  route,
  type ClientPoint,
  type NodeFilter,
  type RouteDecision,
  type SlotPolicy,
} from "@meridian/routing";

// ---- deterministic randomness (seededRandom is the simulator's mulberry32) --------------

function weightedPicker<T>(entries: ReadonlyArray<readonly [T, number]>): (random: () => number) => T {
  const total = entries.reduce((s, [, w]) => s + w, 0);
  return (random) => {
    let x = random() * total;
    for (const [value, weight] of entries) {
      x -= weight;
      if (x < 0) return value;
    }
    return (entries[entries.length - 1] as readonly [T, number])[0];
  };
}

// ---- fleet ------------------------------------------------------------------------------

/** Roughly a rented GPU fleet (weights as the node-agent simulator uses). */
const GPU_MIX: ReadonlyArray<readonly [GpuHardware, number]> = [
  [{ class: "h100", vramGb: 80, count: 8 }, 25],
  [{ class: "h200", vramGb: 141, count: 8 }, 10],
  [{ class: "b200", vramGb: 192, count: 8 }, 8],
  [{ class: "a100", vramGb: 80, count: 8 }, 20],
  [{ class: "rtx4090", vramGb: 24, count: 1 }, 25],
  [{ class: "l40s", vramGb: 48, count: 4 }, 7],
  [{ class: "mi300x", vramGb: 192, count: 8 }, 5],
];
const GPU_SHARE = 0.6;
/** Big data-centre metros carry more nodes than the long tail; every region gets some. */
const HUBS = ["iad", "sjc", "lax", "ord", "dfw", "jfk", "fra", "ams", "lhr", "cdg", "nrt", "sin", "syd", "bom", "gru", "icn", "hkg"];
const HUB_WEIGHT = 4;

function makeFleet(size: number, seed: number): NodeRecord[] {
  const random = seededRandom(seed);
  const pickRegion = weightedPicker(REGIONS.map((r) => [r.id, HUBS.includes(r.id) ? HUB_WEIGHT : 1] as const));
  const pickGpu = weightedPicker(GPU_MIX);
  const now = Date.UTC(2026, 10, 25, 12, 0, 0);
  const seqBase = now * 1000;
  const records: NodeRecord[] = [];
  for (let i = 0; i < size; i++) {
    const region = pickRegion(random);
    const gpu = random() < GPU_SHARE ? pickGpu(random) : undefined;
    const capacity = gpu ? 8 + Math.floor(random() * 57) : 16 + Math.floor(random() * 113);
    const h = random();
    const health = h < 0.03 ? "down" : h < 0.05 ? "draining" : "healthy";
    // Loads on a 1/64 grid: exact in the index's Float32Array, and with ties to exercise the id tie-break.
    const load = health === "down" ? 0 : Math.floor(random() * 65) / 64;
    const inFlight = Math.round(load * capacity);
    const id = `n${i.toString(36).padStart(4, "0")}-${region}-${gpu ? gpu.class : "hotspot"}`;
    const since = now - Math.floor(random() * 7 * 86_400_000);
    records.push({
      id,
      kind: gpu ? "gpu" : "hotspot",
      region,
      ...(gpu ? { gpu: { ...gpu } } : {}),
      capacity,
      endpoint: `https://${id}.nodes.meridian.example:8443`,
      health,
      healthReason: health === "down" ? "heartbeat timeout" : health === "draining" ? "drain: upgrade" : "hello",
      healthSince: since,
      load,
      inFlight,
      free: capacity - inFlight,
      connectedAt: since,
      seq: seqBase + i,
    });
  }
  return records;
}

// ---- clients and requests ------------------------------------------------------------

export interface Query {
  location: ClientPoint & { country: string; subdivision?: string };
  residency?: string;
  requirements: Requirements;
  /** For the breakdown table only. */
  label: string;
}

/** Client countries, roughly by share of traffic; the "/eu" entries carry residency "eu". */
const CLIENT_MIX: ReadonlyArray<readonly [string, number]> = [
  ["US", 30],
  ["IN", 9],
  ["DE", 7],
  ["GB", 6],
  ["JP", 6],
  ["BR", 6],
  ["FR", 5],
  ["CN", 4],
  ["SG", 3],
  ["AU", 3],
  ["DE/eu", 3],
  ["FR/eu", 2],
  ["NL/eu", 1],
  ["IT/eu", 1],
];
const REQUIREMENT_MIX: ReadonlyArray<readonly [string, Requirements]> = [
  ["any", {}],
  ["gpu", { kind: "gpu" }],
  ["h100", { gpuClass: "h100" as GpuClass }],
  ["hotspot", { kind: "hotspot" }],
  ["vram80", { minVramGb: 80 }],
];

function makeQueries(count: number, seed: number): Query[] {
  const random = seededRandom(seed);
  const pickClient = weightedPicker(CLIENT_MIX);
  const byCountry = new Map<string, Region[]>();
  for (const r of REGIONS) byCountry.set(r.country, [...(byCountry.get(r.country) ?? []), r]);
  const out: Query[] = [];
  for (let i = 0; i < count; i++) {
    const [country, residency] = pickClient(random).split("/") as [string, string | undefined];
    const metros = byCountry.get(country);
    if (metros === undefined || metros.length === 0) throw new Error(`no catalog region in ${country}`);
    const metro = metros[Math.floor(random() * metros.length)] as Region;
    // Jitter around a metro of the client's own country: people live near where data centres are.
    const lat = Math.max(-89, Math.min(89, metro.lat + (random() - 0.5) * 3));
    let lon = metro.lon + (random() - 0.5) * 3;
    if (lon > 180) lon -= 360;
    if (lon < -180) lon += 360;
    const [reqLabel, requirements] = REQUIREMENT_MIX[Math.floor(random() * REQUIREMENT_MIX.length)] as (typeof REQUIREMENT_MIX)[number];
    out.push({
      location: { lat, lon, country, ...(metro.subdivision ? { subdivision: metro.subdivision } : {}) },
      ...(residency ? { residency } : {}),
      requirements,
      label: `${country}${residency ? "/eu" : ""} ${reqLabel}`,
    });
  }
  return out;
}

// ---- the decision, as workers/gateway/src/index.ts makes it -----------------------------

const POLICY_REASON = "policy:";
const nodeContext = (n: NodeRecord) => ({ region: n.region, kind: n.kind, ...(n.gpu ? { gpuClass: n.gpu.class } : {}) });

function policyFilter(judge: NodeJudge): NodeFilter {
  return (node) => {
    const verdict = judge(nodeContext(node));
    return verdict.allowed ? null : `${POLICY_REASON}${verdict.rules.join(",")}`;
  };
}

function clientContext(q: Query): ClientContext {
  return {
    ...(q.location.country ? { country: q.location.country } : {}),
    ...(q.location.subdivision ? { subdivision: q.location.subdivision } : {}),
    ...(q.residency ? { residency: q.residency } : {}),
  };
}

/** The policy per (region, slot), as the gateway passes it to route(): the judge's own verdicts. */
function slotPolicy(judge: NodeJudge): SlotPolicy {
  return judge.allows;
}

function decideIndexed(index: FleetIndex, policy: CompiledPolicy, q: Query): RouteDecision {
  const judge = policy.forClient(clientContext(q));
  return route(index, { client: q.location, requirements: q.requirements, allowed: slotPolicy(judge) });
}

// ---- brute-force baseline --------------------------------------------------------------

interface BruteCandidate {
  node: NodeRecord;
  score: number;
}

/** Every node: eligibility, policy verdict, haversine distance, score; keeps the best 1 + fallbacks. */
function decideBruteForce(records: readonly NodeRecord[], policy: CompiledPolicy, q: Query): BruteCandidate[] {
  const judge = policy.forClient(clientContext(q));
  const req = q.requirements;
  const wantKind = req.kind ?? (req.gpuClass !== undefined || req.minVramGb !== undefined ? "gpu" : undefined);
  const want = 1 + DEFAULT_FALLBACKS;
  const kept: BruteCandidate[] = [];
  for (const node of records) {
    if (node.health !== "healthy") continue;
    if (wantKind !== undefined && node.kind !== wantKind) continue;
    if (req.gpuClass !== undefined && node.gpu?.class !== req.gpuClass) continue;
    if (req.minVramGb !== undefined && (node.gpu?.vramGb ?? 0) < req.minVramGb) continue;
    if (node.free <= 0) continue;
    if (!judge(nodeContext(node)).allowed) continue;
    const region = getRegion(node.region);
    if (region === undefined) continue;
    const rtt = estimateRttMs(greatCircleKm(q.location.lat, q.location.lon, region.lat, region.lon));
    const score = rtt + node.load * LOAD_PENALTY_MS;
    // Top-k insertion, ties by id (the order route() promises).
    let at = kept.length;
    while (at > 0) {
      const prev = kept[at - 1] as BruteCandidate;
      if (prev.score < score || (prev.score === score && prev.node.id < node.id)) break;
      at--;
    }
    if (at >= want) continue;
    kept.splice(at, 0, { node, score });
    if (kept.length > want) kept.pop();
  }
  return kept;
}

// ---- correctness gate ------------------------------------------------------------------

function assertSameAnswers(index: FleetIndex, records: readonly NodeRecord[], policy: CompiledPolicy, queries: readonly Query[]): { checked: number; empty: number } {
  let empty = 0;
  for (const q of queries) {
    const fast = decideIndexed(index, policy, q).candidates.map((c) => c.node.id);
    const slow = decideBruteForce(records, policy, q).map((c) => c.node.id);
    if (fast[0] !== slow[0] || fast.join() !== slow.join()) {
      throw new Error(
        `indexed and brute-force answers differ for ${q.label} at (${q.location.lat.toFixed(3)}, ${q.location.lon.toFixed(3)}) ` +
          `req=${JSON.stringify(q.requirements)} fleet=${records.length}: indexed [${fast.join(", ")}] vs brute [${slow.join(", ")}]`,
      );
    }
    if (fast.length === 0) empty++;
  }
  return { checked: queries.length, empty };
}

// ---- timing ----------------------------------------------------------------------------

let sink = 0;

/** Per-decision µs: hrtime around `batch` consecutive decisions, divided by `batch`. */
function timeDecisions(run: (q: Query) => number, queries: readonly Query[], batch: number, budgetMs: number, minSamples: number, maxSamples = 1_000_000): { samples: number[]; perQuery: Map<string, number[]> | null } {
  const samples: number[] = [];
  const perQuery = batch === 1 ? new Map<string, number[]>() : null;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(budgetMs * 1e6));
  let qi = 0;
  while ((samples.length < minSamples || process.hrtime.bigint() < deadline) && samples.length < maxSamples) {
    const first = qi;
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) {
      sink ^= run(queries[qi] as Query);
      qi = qi + 1 === queries.length ? 0 : qi + 1;
    }
    const us = Number(process.hrtime.bigint() - t0) / 1000 / batch;
    samples.push(us);
    if (perQuery !== null) {
      const label = (queries[first] as Query).label.replace(/^(\S+) /, (_, c: string) => (c === "CN" ? "CN " : c.endsWith("/eu") ? "eu " : "other "));
      let list = perQuery.get(label);
      if (list === undefined) perQuery.set(label, (list = []));
      list.push(us);
    }
  }
  return { samples, perQuery };
}

/** Cost of one hrtime.bigint() pair, µs. */
function timerOverheadUs(): number {
  const n = 200_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink ^= Number(process.hrtime.bigint() & 1n);
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

function warmUp(run: (q: Query) => number, queries: readonly Query[], ms: number): void {
  const deadline = performance.now() + ms;
  let qi = 0;
  while (performance.now() < deadline) {
    for (let j = 0; j < 20; j++) {
      sink ^= run(queries[qi] as Query);
      qi = (qi + 1) % queries.length;
    }
  }
}

function medianBuildMs(records: readonly NodeRecord[], reps: number): number {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    const index = new FleetIndex(records);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    sink ^= index.size;
  }
  return summarize(times).p50;
}

// ---- the benchmark ---------------------------------------------------------------------

const SIZES = [
  { label: "1k", nodes: 1_000, goalUs: 5 },
  { label: "10k", nodes: 10_000, goalUs: 20 },
  { label: "100k", nodes: 100_000, goalUs: 60 },
] as const;
const BATCH = 50;

/** The fleet, clients and gateway glue of this benchmark, for bench/routing-profile.ts. */
export function benchFixtures() {
  return { policy: loadBaselinePolicy(), queries: makeQueries(8192, 0x5eed), makeFleet, makeQueries, clientContext, policyFilter, nodeContext, decideIndexed, decideBruteForce };
}

export function loadBaselinePolicy(): CompiledPolicy {
  const path = new URL("../infra/policies/baseline.json", import.meta.url);
  return compilePolicy(PolicyDocumentSchema.parse(JSON.parse(readFileSync(path, "utf8"))), 1);
}

export async function runRoutingBench(options: { smoke: boolean }): Promise<Record<string, number>> {
  const { smoke } = options;
  const policy = loadBaselinePolicy();
  const queries = makeQueries(8192, 0x5eed);
  const sanityQueries = queries.slice(0, smoke ? 100 : 500);
  const result: Record<string, number> = {};
  const rows: Record<string, string | number>[] = [];
  const diagnostics: Record<string, string | number>[] = [];
  let breakdown: { size: string; perQuery: Map<string, number[]> } | null = null;

  for (const size of SIZES) {
    const records = makeFleet(size.nodes, 0xf1ee7 + size.nodes);
    const buildMs = medianBuildMs(records, smoke ? (size.nodes >= 100_000 ? 1 : 3) : size.nodes >= 100_000 ? 7 : 15);
    const index = new FleetIndex(records);
    if (size.nodes === 10_000) result.snapshot_bytes_per_10k_nodes = Buffer.byteLength(JSON.stringify(records));

    // Correctness first: a fast wrong answer must not produce a number.
    const gate = assertSameAnswers(index, records, policy, size.nodes >= 100_000 && smoke ? sanityQueries.slice(0, 30) : sanityQueries);

    const indexed = (q: Query) => decideIndexed(index, policy, q).candidates.length;
    const brute = (q: Query) => decideBruteForce(records, policy, q).length;

    warmUp(indexed, queries, smoke ? 60 : 400);
    // Decisions are heavy-tailed (a client the policy refuses every GPU walks the whole fleet), so a
    // batch mean is not a per-decision sample: the reported p50/p99 time each decision alone
    // (hrtime costs well under 1 % of the cheapest decision, see timerOverheadUs). Batches of 50
    // are kept as a throughput figure.
    const single = timeDecisions(indexed, queries, 1, smoke ? 150 : 3000, smoke ? 500 : 5000);
    const batched = timeDecisions(indexed, queries, BATCH, smoke ? 100 : 1000, smoke ? 20 : 200);

    warmUp(brute, queries, smoke ? 30 : 200);
    const bruteBatch = size.nodes >= 100_000 ? 1 : size.nodes >= 10_000 ? 2 : 10;
    const bruteTimes = timeDecisions(brute, queries, bruteBatch, smoke ? 100 : 1500, smoke ? 5 : 40);

    // Work per decision (untimed): nodes examined, policy verdicts asked.
    let filterCalls = 0;
    const examined: number[] = [];
    const calls: number[] = [];
    for (const q of queries.slice(0, smoke ? 500 : 4000)) {
      const inner = slotPolicy(policy.forClient(clientContext(q)));
      const before = filterCalls;
      const d = route(index, { client: q.location, requirements: q.requirements, allowed: (r, slot) => (filterCalls++, inner(r, slot)) });
      examined.push(d.examined);
      calls.push(filterCalls - before);
    }

    const s = summarize(batched.samples);
    const one = summarize(single.samples);
    const b = summarize(bruteTimes.samples);
    result[`routing_us_p50_${size.label}`] = one.p50;
    result[`routing_us_p99_${size.label}`] = one.p99;
    result[`routing_bruteforce_us_p50_${size.label}`] = b.p50;
    if (size.nodes >= 10_000) result[`fleet_index_build_ms_${size.label}`] = buildMs;
    rows.push({
      size: size.label,
      "p50 µs": one.p50,
      "p99 µs": one.p99,
      "max µs": one.max,
      "goal p50": `<= ${size.goalUs}`,
      met: one.p50 <= size.goalUs ? "yes" : "NO",
      "mean µs": one.mean,
      "batch50 p50": s.p50,
      "brute p50 µs": b.p50,
      "brute/indexed p50": b.p50 / one.p50,
      "build ms": buildMs,
      samples: `${one.n} / ${s.n}x${BATCH} / ${b.n}x${bruteBatch}`,
      checked: `${gate.checked} (${gate.empty} empty)`,
    });
    const ex = summarize(examined);
    const fc = summarize(calls);
    diagnostics.push({ size: size.label, "examined p50": ex.p50, "examined p99": ex.p99, "examined max": ex.max, "filter calls p50": fc.p50, "filter calls p99": fc.p99, "filter calls max": fc.max });
    breakdown = { size: size.label, perQuery: single.perQuery ?? new Map() };
  }

  const m = machineInfo();
  console.log(`\nmachine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}${smoke ? " (smoke)" : ""}`);
  printTable("Routing decision (policy judge + filter + ranking + 2 fallbacks), per decision", rows);
  console.log(
    `p50/p99/max/mean: every decision timed alone (hrtime overhead ${timerOverheadUs().toFixed(3)} µs, not subtracted); batch50 p50: median of\n` +
      "per-decision means over batches of 50 (a throughput figure: one slow decision in a batch lifts the whole batch).",
  );
  printTable("Work per decision (route().examined and policy filter calls)", diagnostics);
  if (breakdown !== null) {
    let total = 0;
    for (const xs of breakdown.perQuery.values()) for (const x of xs) total += x;
    const byClass = [...breakdown.perQuery.entries()]
      .map(([label, xs]) => ({ label, s: summarize(xs) }))
      .sort((a, b) => a.label.localeCompare(b.label))
      .map(({ label, s }) => ({ [`class @ ${breakdown.size}`]: label, n: s.n, "p50 µs": s.p50, "p99 µs": s.p99, "max µs": s.max, "% of routing CPU": (100 * s.mean * s.n) / total }));
    printTable("1-shot decisions by client group and requirements", byClass);
  }
  printTable(
    "Figures",
    Object.entries(result).map(([key, value]) => ({ key, value })),
  );
  if (sink === 0.5) console.log(sink); // keep the results observable
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const smoke = process.argv.includes("--smoke");
  const t0 = performance.now();
  await runRoutingBench({ smoke });
  console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
