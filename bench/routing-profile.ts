/**
 * Where the time of a routing decision goes: micro-timings of its parts, on the same fleet,
 * policy and clients as bench/routing.ts.
 *
 *   node_modules/.bin/tsx bench/routing-profile.ts
 */
import type { NodeJudge } from "@meridian/policy";
import { REGIONS, estimateRttMs, EARTH_RADIUS_KM } from "@meridian/regions";
import { printTable } from "./lib/stats";
import { FleetIndex, route, type NodeRecord } from "./lib/workspace";
import { REGION_X, REGION_Y, REGION_Z } from "../packages/routing/src/fleet-index";
import { benchFixtures } from "./routing";

let sink = 0;

/** ns per call of `body`, median of 7 runs of `iterations` calls. */
function nsPer(iterations: number, body: (i: number) => number): number {
  for (let i = 0; i < iterations; i++) sink ^= body(i); // warm-up / JIT
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink ^= body(i);
    runs.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  runs.sort((a, b) => a - b);
  return runs[3] as number;
}

const { policy, queries, makeFleet, clientContext, policyFilter, nodeContext, decideIndexed } = benchFixtures();

// `--hot <nodes>`: only run decisions for 4 s, for `node --cpu-prof --import tsx bench/routing-profile.ts --hot 100000`.
const hotAt = process.argv.indexOf("--hot");
if (hotAt >= 0) {
  const index = new FleetIndex(makeFleet(Number(process.argv[hotAt + 1] ?? 100_000), 1));
  const deadline = performance.now() + 4000;
  let qi = 0;
  let n = 0;
  while (performance.now() < deadline) {
    for (let j = 0; j < 100; j++, n++) sink ^= decideIndexed(index, policy, queries[qi++ % queries.length]!).candidates.length;
  }
  console.log(`${n} decisions`);
  process.exit(0);
}
const rows: Record<string, string | number>[] = [];
const add = (part: string, ns: number, note = "") => rows.push({ part, "ns/call": ns, note });

// ---- per decision: client judge lookup -------------------------------------------------
const Q = queries.length;
add("policy.forClient(ctx) (cache hit)", nsPer(200_000, (i) => (policy.forClient(clientContext(queries[i % Q]!)) ? 1 : 0)), "key string + Map.get, once per decision");

// ---- per decision: region ordering (route over an empty fleet) ----------------------------
const empty = new FleetIndex([]);
add("route() over an empty fleet", nsPer(100_000, (i) => route(empty, { client: queries[i % Q]!.location, requirements: {} }).examined), "140 x (dot, acos, rtt) + Float64Array.sort(140)");

const N = REGIONS.length;
const keys = new Float64Array(N);
const rtt = new Float64Array(N);
const dots = new Float64Array(N);
const cx = new Float64Array(Q);
const cy = new Float64Array(Q);
const cz = new Float64Array(Q);
queries.forEach((q, i) => {
  const lat = (q.location.lat * Math.PI) / 180;
  const lon = (q.location.lon * Math.PI) / 180;
  cx[i] = Math.cos(lat) * Math.cos(lon);
  cy[i] = Math.cos(lat) * Math.sin(lon);
  cz[i] = Math.sin(lat);
});
add(
  "  140 x acos + rtt (no sort)",
  nsPer(100_000, (i) => {
    const q = i % Q;
    for (let r = 0; r < N; r++) {
      const dot = cx[q]! * REGION_X[r]! + cy[q]! * REGION_Y[r]! + cz[q]! * REGION_Z[r]!;
      const km = Math.acos(Math.min(1, Math.max(-1, dot))) * EARTH_RADIUS_KM;
      rtt[r] = estimateRttMs(km);
      keys[r] = Math.floor(km * 16) * 256 + r;
    }
    return keys[0]!;
  }),
);
add(
  "  140 x dot only (no acos)",
  nsPer(100_000, (i) => {
    const q = i % Q;
    for (let r = 0; r < N; r++) dots[r] = cx[q]! * REGION_X[r]! + cy[q]! * REGION_Y[r]! + cz[q]! * REGION_Z[r]!;
    return dots[0]!;
  }),
);
const shuffledKeys = queries.slice(0, 64).map((_, q) => {
  const k = new Float64Array(N);
  for (let r = 0; r < N; r++) k[r] = Math.floor(Math.acos(cx[q]! * REGION_X[r]! + cy[q]! * REGION_Y[r]! + cz[q]! * REGION_Z[r]!) * EARTH_RADIUS_KM * 16) * 256 + r;
  return k;
});
add(
  "  Float64Array(140).sort()",
  nsPer(50_000, (i) => {
    keys.set(shuffledKeys[i % 64]!);
    keys.sort();
    return keys[0]!;
  }),
  "includes a 140-element copy",
);
add(
  "  140-element copy only",
  nsPer(50_000, (i) => {
    keys.set(shuffledKeys[i % 64]!);
    return keys[0]!;
  }),
);

// ---- per filter call: the gateway's policy filter ---------------------------------------
const fleet = makeFleet(10_000, 7);
const cnGpu = fleet.filter((n) => n.kind === "gpu" && n.health === "healthy" && n.free > 0);
const cnJudge = policy.forClient({ country: "CN", subdivision: "CN-BJ" });
const usJudge = policy.forClient({ country: "US", subdivision: "US-VA" });
const cnFilter = policyFilter(cnJudge);
const usFilter = policyFilter(usJudge);
const G = cnGpu.length;
add("gateway filter, denied node (CN client, GPU node)", nsPer(500_000, (i) => (cnFilter(cnGpu[i % G]!) === null ? 0 : 1)), "nodeContext + memo key + Map.get + `policy:${rules.join()}`");
add("gateway filter, allowed node (US client, GPU node)", nsPer(500_000, (i) => (usFilter(cnGpu[i % G]!) === null ? 0 : 1)));
add("  judge(nodeContext(node)) only", nsPer(500_000, (i) => (cnJudge(nodeContext(cnGpu[i % G]!)).allowed ? 0 : 1)));
add("  nodeContext(node) only (object + spread)", nsPer(500_000, (i) => nodeContext(cnGpu[i % G]!).region.length));
add("  memo key template string + Map.get", (() => {
  const memo = new Map<string, number>();
  for (const n of cnGpu) memo.set(`${n.region}|${n.kind}|${n.gpu?.class ?? ""}`, 1);
  return nsPer(500_000, (i) => {
    const n = cnGpu[i % G]!;
    return memo.get(`${n.region}|${n.kind}|${n.gpu?.class ?? ""}`) ?? 0;
  });
})());
add("  `policy:${rules.join(\",\")}` only", (() => {
  const rules = ["advanced-gpu-d5"];
  return nsPer(500_000, (i) => `policy:${rules.join(",")}`.length + i);
})());
add("  numeric memo: Int8Array[regionIndex*16 + class]", (() => {
  const regionOf = new Map(REGIONS.map((r, i) => [r.id, i] as const));
  const cls = new Map<string | undefined, number>([[undefined, 0]]);
  const memo = new Int8Array(N * 16).fill(1);
  return nsPer(500_000, (i) => {
    const n = cnGpu[i % G]!;
    let c = cls.get(n.gpu?.class);
    if (c === undefined) cls.set(n.gpu?.class, (c = cls.size));
    return memo[(regionOf.get(n.region) ?? 0) * 16 + c]!;
  });
})(), "what a per-client allow mask costs per node");
add("  typed-column eligibility check (route's ineligibility)", (() => {
  const index = new FleetIndex(fleet);
  const gpuPos = fleet.map((n, i) => (n.kind === "gpu" ? i : -1)).filter((i) => i >= 0);
  const P = gpuPos.length;
  return nsPer(1_000_000, (i) => {
    const j = gpuPos[i % P]!;
    return index.healthy[j] === 1 && index.kind[j] === 1 && index.free[j]! > 0 ? 1 : 0;
  });
})());

printTable("Parts of a decision", rows);

// ---- who pays: filter calls per decision -----------------------------------------------
const judges = new Set<NodeJudge>();
for (const q of queries) judges.add(policy.forClient(clientContext(q)));
console.log(`\ndistinct client judges in the query mix: ${judges.size}`);
if (sink === 0.5) console.log(sink);
export type { NodeRecord };
