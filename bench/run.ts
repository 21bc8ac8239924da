/**
 * `pnpm bench` (or `npm run bench`): the whole benchmark suite, one part after another so
 * the parts do not disturb each other. Prints tables for people; `--json` also writes
 * bench/results.json (and the gateway chart, bench/gateway.svg). `--smoke` is the short
 * variant CI runs so the suite cannot rot. `--help` lists the flags and parts.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "../scripts/dev-gateway";
import { runDetectorBench } from "./detector";
import { runFailoverBench } from "./failover";
import { runGatewayBench } from "./gateway";
import { runHeartbeatBench } from "./heartbeat";
import { gatewayChartSvg } from "./lib/chart";
import { runOpenAiBench } from "./openai";
import { machineInfo, printTable } from "./lib/stats";
import { runOffloadBench } from "./offload";
import { runRoutingBench } from "./routing";
import { runScaleBench } from "./scale";
import { runTenantsBench } from "./tenants";

type Results = Record<string, number>;
interface Part {
  about: string;
  /** Default parts run without --only; the others only when named. */
  byDefault: boolean;
  run(options: { smoke: boolean; parts: ReadonlySet<string> }): Promise<Results> | Results;
}

/** Every part, in the order a run takes them. A new part is one entry here (e.g. `scale`). */
const PARTS: Record<string, Part> = {
  routing: { about: "one routing decision at 1k / 10k / 100k nodes against brute force", byDefault: true, run: (o) => runRoutingBench(o) },
  gateway: { about: "the gateway against the node, HAProxy, bare workerd and Portkey, interleaved rounds", byDefault: true, run: (o) => runGatewayBench(o) },
  heartbeat: { about: "nodes held at 1 Hz heartbeats, stepped to 7,500; hub storage writes at 1,000", byDefault: true, run: (o) => runHeartbeatBench(o) },
  // The 1,000-node step alone: the hubs' storage writes without the whole ingest ladder.
  hubs: { about: "hub storage writes and fsync/s at 1,000 nodes (the heartbeat part includes it)", byDefault: false, run: (o) => (o.parts.has("heartbeat") ? {} : runHeartbeatBench({ smoke: o.smoke, steps: [1000] })) },
  failover: { about: "killed and frozen nodes: detection time and false downs against HAProxy", byDefault: true, run: (o) => runFailoverBench(o) },
  detector: { about: "the failure detector alone on 2 million simulated gaps per setting", byDefault: true, run: (o) => runDetectorBench(o) },
  offload: { about: "carrier offload decisions and the ledger's overhead per request", byDefault: true, run: (o) => runOffloadBench(o) },
  openai: { about: "OpenAI-native routing: model, steering and affinity costs, affinity hit rate and movement, TTFT failover", byDefault: true, run: (o) => runOpenAiBench(o) },
  tenants: { about: "per-request cost of the tenant key lookup and limit checks beside the plain path", byDefault: true, run: (o) => runTenantsBench(o) },
  scale: { about: "the fleet fan-out tree simulated: 330 colos x K isolates, 100k nodes, 1 % changing per second", byDefault: true, run: (o) => runScaleBench(o) },
};

const USAGE = `usage: tsx bench/run.ts [--smoke] [--json] [--only PART[,PART...]]

  --smoke        short variant (about a minute), what CI runs
  --json         also write bench/results.json and bench/gateway.svg
  --only PARTS   comma-separated parts to run (default: every part marked *)
  --help         this text

parts:
${Object.entries(PARTS)
  .map(([name, part]) => `  ${part.byDefault ? "*" : " "} ${name.padEnd(10)} ${part.about}`)
  .join("\n")}`;

/** Refuses a bad command line with one clear line and exit status 2. */
function refuse(message: string): never {
  console.error(`bench: ${message} (--help lists the flags)`);
  process.exit(2);
}

function parseCommandLine(): { smoke: boolean; json: boolean; parts: Set<string> } {
  let values: { smoke?: boolean; json?: boolean; only?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { smoke: { type: "boolean" }, json: { type: "boolean" }, only: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    refuse(err instanceof Error ? err.message.split("\n")[0] ?? String(err) : String(err));
  }
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const names = values.only === undefined ? Object.keys(PARTS).filter((name) => PARTS[name]?.byDefault) : values.only.split(",").map((s) => s.trim());
  const unknown = names.filter((name) => !(name in PARTS));
  if (names.length === 0 || names.some((name) => name === "")) refuse(`--only needs part names, got "${values.only ?? ""}"`);
  if (unknown.length > 0) refuse(`unknown part${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `"${n}"`).join(", ")} for --only; parts are ${Object.keys(PARTS).join(", ")}`);
  return { smoke: values.smoke ?? false, json: values.json ?? false, parts: new Set(names) };
}

const GOALS: Record<string, string> = {
  routing_us_p50_1k: "<= 5",
  routing_us_p50_10k: "<= 20",
  routing_us_p50_100k: "<= 60",
  gateway_to_bare_rps_ratio: ">= 0.9",
  gateway_added_latency_us_p50: "<= 100",
  gateway_p99_to_bare: "<= 1.5",
  gateway_to_portkey_rps_ratio: ">= 3",
  gateway_to_portkey_cpu_ratio: "<= 0.33",
  hub_storage_writes_per_node_per_s: "<= 0.01",
  heartbeat_nodes_sustained: ">= 5000",
  policy_propagation_ms_p99: "<= 1000",
  failover_close_ms_p99: "<= 1000",
  failover_silent_ms_p99: "<= 3500",
  failover_silent_hub_ms_p99: "<= 3500",
  failover_false_downs: "0",
  detector_false_downs_per_1k_nodes_2min: "0",
  detector_silent_ms_p99: "<= 3500",
  offload_ledger_overhead_us_per_request: "<= 100",
  offload_ledger_requests_missing: "0",
  offload_ledger_bytes_missing: "0",
  scale_primary_rps_1000_isolates: "<= 50",
  scale_freshness_ms_p99: "<= 1000",
  snapshot_bytes_per_node: "<= 40",
  index_update_us_per_1000_changes_100k: "<= 1000",
};

/** The baselines come from Debian: install them for a full run when missing (root only). */
function ensureBaselineTools(smoke: boolean): void {
  const missing = ["haproxy", "wrk"].filter((cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0);
  if (missing.length === 0) return;
  if (smoke || process.getuid?.() !== 0) {
    console.log(`[bench] ${missing.join(", ")} missing: those baselines are skipped (apt-get install ${missing.join(" ")})`);
    return;
  }
  console.log(`[bench] installing ${missing.join(", ")} from Debian...`);
  spawnSync("sh", ["-c", `apt-get update -qq && apt-get install -y -qq ${missing.join(" ")}`], { stdio: "inherit" });
}

const { smoke, json, parts } = parseCommandLine();
if (parts.has("gateway") || parts.has("failover")) ensureBaselineTools(smoke);
const info = machineInfo();
console.log(`[bench] ${smoke ? "smoke" : "full"} run of ${[...parts].join(", ")} on ${JSON.stringify(info)}`);
const results: Results = {};
const startedAt = performance.now();
for (const [name, part] of Object.entries(PARTS)) {
  if (parts.has(name)) Object.assign(results, await part.run({ smoke, parts }));
}

printTable(
  "results",
  Object.entries(results).map(([key, value]) => ({ key, value: Number.isFinite(value) ? value : "n/a", goal: GOALS[key] ?? "" })),
);
console.log(`[bench] done in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
if (json) {
  const path = join(REPO_ROOT, "bench/results.json");
  writeFileSync(path, `${JSON.stringify({ at: new Date().toISOString(), smoke, machine: info, results }, null, 2)}\n`);
  console.log(`[bench] wrote ${path}`);
  if (parts.has("gateway") && !smoke) {
    const chart = join(REPO_ROOT, "bench/gateway.svg");
    writeFileSync(chart, gatewayChartSvg(results, new Date().toISOString().slice(0, 10)));
    console.log(`[bench] wrote ${chart}`);
  }
}
process.exit(0);
