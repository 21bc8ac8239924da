/**
 * `pnpm bench` (or `npm run bench`): the whole benchmark suite, one part after another so
 * the parts do not disturb each other. Prints tables for people; `--json` also writes
 * bench/results.json. `--smoke` is the short variant CI runs so the suite cannot rot.
 * `--only routing,gateway,heartbeat,failover,detector,offload,scale` picks parts.
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
import { runOffloadBench } from "./offload";
import { machineInfo, printTable } from "./lib/stats";
import { runRoutingBench } from "./routing";
import { runScaleBench } from "./scale";
import { runTenantsBench } from "./tenants";

const { values } = parseArgs({ options: { smoke: { type: "boolean", default: false }, json: { type: "boolean", default: false }, only: { type: "string" } } });
const parts = new Set((values.only ?? "routing,gateway,heartbeat,failover,detector,offload,scale").split(","));
const smoke = values.smoke ?? false;

const GOALS: Record<string, string> = {
  routing_us_p50_1k: "<= 5",
  routing_us_p50_10k: "<= 20",
  routing_us_p50_100k: "<= 60",
  gateway_to_bare_rps_ratio: ">= 0.9",
  gateway_added_latency_us_p50: "<= 100",
  heartbeat_nodes_sustained: ">= 5000",
  policy_propagation_ms_p99: "<= 1000",
  failover_close_ms_p99: "<= 1000",
  failover_silent_ms_p99: "<= 3500",
  failover_silent_hub_ms_p99: "<= 3500",
  failover_false_downs: "0",
  detector_false_downs_per_1k_nodes_2min: "0",
  detector_silent_ms_p99: "<= 3500",
  offload_ledger_requests_missing: "0",
  offload_ledger_bytes_missing: "0",
  scale_primary_rps_1000_isolates: "<= 50",
  scale_freshness_ms_p99: "<= 1000",
  snapshot_bytes_per_node: "<= 40",
  index_update_us_per_1000_changes_100k: "<= 1000",
};

/** The baselines come from Debian: install them for a full run when missing (root only). */
function ensureBaselineTools(): void {
  const missing = ["haproxy", "wrk"].filter((cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0);
  if (missing.length === 0) return;
  if (smoke || process.getuid?.() !== 0) {
    console.log(`[bench] ${missing.join(", ")} missing: those baselines are skipped (apt-get install ${missing.join(" ")})`);
    return;
  }
  console.log(`[bench] installing ${missing.join(", ")} from Debian...`);
  spawnSync("sh", ["-c", `apt-get update -qq && apt-get install -y -qq ${missing.join(" ")}`], { stdio: "inherit" });
}

if (parts.has("gateway") || parts.has("failover")) ensureBaselineTools();
const info = machineInfo();
console.log(`[bench] ${smoke ? "smoke" : "full"} run on ${JSON.stringify(info)}`);
const results: Record<string, number> = {};
const startedAt = performance.now();
if (parts.has("routing")) Object.assign(results, await runRoutingBench({ smoke }));
if (parts.has("gateway")) Object.assign(results, await runGatewayBench({ smoke }));
if (parts.has("heartbeat")) Object.assign(results, await runHeartbeatBench({ smoke }));
if (parts.has("failover")) Object.assign(results, await runFailoverBench({ smoke }));
if (parts.has("detector")) Object.assign(results, runDetectorBench({ smoke }));
if (parts.has("offload")) Object.assign(results, await runOffloadBench({ smoke }));
if (parts.has("scale")) Object.assign(results, await runScaleBench({ smoke }));
if (parts.has("tenants")) Object.assign(results, await runTenantsBench({ smoke }));

printTable(
  "results",
  Object.entries(results).map(([key, value]) => ({ key, value: Number.isFinite(value) ? value : "n/a", goal: GOALS[key] ?? "" })),
);
console.log(`[bench] done in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
if (values.json) {
  const path = join(REPO_ROOT, "bench/results.json");
  writeFileSync(path, `${JSON.stringify({ at: new Date().toISOString(), smoke, machine: info, results }, null, 2)}\n`);
  console.log(`[bench] wrote ${path}`);
}
process.exit(0);
