/**
 * Heartbeat ingest: how many simulated nodes at 1 Hz one local gateway (bare workerd,
 * hibernating RegionHubs) holds with zero false "down" events. Steps up the fleet size;
 * the simulator runs as its own process on the other core.
 * At 1,000 nodes it also counts the hubs' storage writes: the runtime's fsync/fdatasync
 * calls (one per durable SQLite commit: a setAlarm, a membership write) and its file
 * writes, counted in the kernel over the hold, with no requests served.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../scripts/dev-gateway";
import { killGroup, startSimProcess } from "./lib/process";
import { countStorageSyscalls, cpuSeconds, iowaitPercent, machineCpuTimes } from "./lib/sysstat";
import { bundleGateway, GATEWAY_DURABLE_OBJECTS, startWorkerd, BENCH_GATEWAY_VARS } from "./lib/workerd";

const SECRETS = BENCH_GATEWAY_VARS;

interface FleetState {
  total: number;
  healthy: number;
  down: number;
}

async function fleetState(url: string): Promise<FleetState> {
  const body = (await (await fetch(`${url}/admin/fleet`, { headers: { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` } })).json()) as { nodes: { health: string }[] };
  return { total: body.nodes.length, healthy: body.nodes.filter((n) => n.health === "healthy").length, down: body.nodes.filter((n) => n.health === "down").length };
}

function startSim(gatewayUrl: string, nodes: number, prefix: string): Promise<ChildProcess> {
  const args = ["--nodes", String(nodes), "--prefix", prefix, "--heartbeat-ms", "1000", "--connect-concurrency", "64"];
  return startSimProcess(gatewayUrl, SECRETS.ADMIN_TOKEN, args, { core: 1, readyTimeoutMs: 180_000 });
}

/** The fleet size at which the hubs' storage writes are counted (the goal's setting). */
const STORAGE_STEP = 1000;

/** `steps` narrows the run, e.g. [1000] for the storage figures alone (`--only hubs`). */
export async function runHeartbeatBench(options: { smoke: boolean; steps?: number[] }): Promise<Record<string, number>> {
  const steps = options.steps ?? (options.smoke ? [300] : [1000, 2500, 5000, 7500]);
  const holdSeconds = options.smoke ? 5 : 30;
  const results: Record<string, number> = {};
  let sustained = 0;
  for (const nodes of steps) {
    const dir = mkdtempSync(join(tmpdir(), "meridian-hb-"));
    bundleGateway(dir);
    const gateway = await startWorkerd({ dir, port: await freePort(), module: "index.js", text: SECRETS, durableObjects: GATEWAY_DURABLE_OBJECTS });
    if (spawnSync("sh", ["-c", "command -v taskset"]).status === 0 && gateway.process.pid !== undefined) {
      spawnSync("taskset", ["-a", "-p", "-c", "0", String(gateway.process.pid)], { stdio: "ignore" });
    }
    let sim: ChildProcess | undefined;
    try {
      const rampAt = performance.now();
      sim = await startSim(gateway.url, nodes, `hb${nodes}`);
      const rampSeconds = (performance.now() - rampAt) / 1000;
      const cpuBefore = cpuSeconds(gateway.process.pid);
      const machineBefore = machineCpuTimes();
      // Counted over the hold, after the ramp: steady state, not the joins.
      const storage = nodes === STORAGE_STEP || options.smoke ? countStorageSyscalls(gateway.process.pid, holdSeconds) : null;
      let worstDown = 0;
      let lowestHealthy = Number.POSITIVE_INFINITY;
      const holdStart = performance.now();
      while (performance.now() - holdStart < holdSeconds * 1000) {
        await new Promise((r) => setTimeout(r, 1000));
        const state = await fleetState(gateway.url);
        worstDown = Math.max(worstDown, state.down);
        lowestHealthy = Math.min(lowestHealthy, state.healthy);
      }
      const cpuShare = (cpuSeconds(gateway.process.pid) - cpuBefore) / holdSeconds;
      const iowait = iowaitPercent(machineBefore, machineCpuTimes());
      const writes = await storage;
      if (writes !== null) {
        const fsyncPerS = writes.fsyncs / writes.seconds;
        results.hub_storage_writes_per_node_per_s = Math.round((fsyncPerS / nodes) * 1000) / 1000;
        results.hub_fsync_per_s = Math.round(fsyncPerS);
        results.hub_file_writes_per_s = Math.round(writes.fileWrites / writes.seconds);
        results.hub_iowait_pct = Math.round(iowait * 10) / 10;
        console.log(`[heartbeat] ${nodes} nodes: ${fsyncPerS.toFixed(0)} fsync/s (${(fsyncPerS / nodes).toFixed(3)} per node per s), ${(writes.fileWrites / writes.seconds).toFixed(0)} file writes/s, iowait ${iowait.toFixed(1)} % of the machine`);
      } else if (nodes === STORAGE_STEP) {
        console.log("[heartbeat] storage writes not counted: needs perf with syscall tracepoints (root)");
      }
      const held = worstDown === 0 && lowestHealthy === nodes;
      console.log(`[heartbeat] ${nodes} nodes at 1 Hz: ramp ${rampSeconds.toFixed(1)} s, lowest healthy ${lowestHealthy}, false downs ${worstDown}, workerd CPU ${(cpuShare * 100).toFixed(0)} % of a core over ${holdSeconds} s -> ${held ? "held" : "NOT held"}`);
      results[`heartbeat_workerd_cpu_pct_${nodes}`] = Math.round(cpuShare * 100);
      results[`heartbeat_false_downs_${nodes}`] = worstDown;
      if (held) sustained = nodes;
      else break;
    } finally {
      if (sim !== undefined) killGroup(sim);
      gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  results.heartbeat_nodes_sustained = sustained;
  return results;
}
