/**
 * Heartbeat ingest: how many simulated nodes at 1 Hz one local gateway (bare workerd,
 * hibernating RegionHubs) holds with zero false "down" events. Steps up the fleet size;
 * the simulator runs as its own process on the other core.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../scripts/dev-gateway";
import { killGroup, startSimProcess } from "./lib/process";
import { bundleGateway, GATEWAY_DURABLE_OBJECTS, startWorkerd } from "./lib/workerd";

const SECRETS = { ADMIN_TOKEN: "bench-admin-token-0123456789", NODE_CREDENTIAL_KEY: "bench-credential-key-0123456789abcdef0123456789" };

interface FleetState {
  total: number;
  healthy: number;
  down: number;
}

async function fleetState(url: string): Promise<FleetState> {
  const body = (await (await fetch(`${url}/admin/fleet`, { headers: { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` } })).json()) as { nodes: { health: string }[] };
  return { total: body.nodes.length, healthy: body.nodes.filter((n) => n.health === "healthy").length, down: body.nodes.filter((n) => n.health === "down").length };
}

/** CPU seconds used so far by a process (utime + stime from /proc). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

function startSim(gatewayUrl: string, nodes: number, prefix: string): Promise<ChildProcess> {
  const args = ["--nodes", String(nodes), "--prefix", prefix, "--heartbeat-ms", "1000", "--connect-concurrency", "64"];
  return startSimProcess(gatewayUrl, SECRETS.ADMIN_TOKEN, args, { core: 1, readyTimeoutMs: 180_000 });
}

export async function runHeartbeatBench(options: { smoke: boolean }): Promise<Record<string, number>> {
  const steps = options.smoke ? [300] : [1000, 2500, 5000, 7500];
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
