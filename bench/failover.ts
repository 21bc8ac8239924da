/**
 * Failure detection: how fast the gateway notices dead nodes, next to HAProxy active health
 * checks on the very same simulated nodes during the very same chaos.
 *
 * One run: the gateway in bare workerd (bench/lib/workerd.ts), a simulated fleet in this
 * process (heartbeat 1 s with 200 ms jitter and 1 % lost frames, so false alarms can happen),
 * and HAProxy with one backend per node (`GET /n/<id>/v1/whoami`, inter 1s fall 2 rise 2,
 * timeout check 1s). Once everything is healthy, 10 % of the nodes are killed (kill -9: socket
 * cut, HTTP connections refused) and 5 % frozen (SIGSTOP: socket open, silent, HTTP hangs).
 * Both sides are polled every 50 ms; a victim's detection time is the first poll (its answer
 * time) that shows it down (or gone), minus the moment it was hit.
 * False downs: nodes that were not hit but were seen "down" by the gateway during the run
 * (false suspects, likewise, for the earlier and still routable `suspect` state).
 *
 * Full mode is the fleet-health goal's own setting: 1,000 nodes held for 2 minutes. Run
 * directly, `--nodes N --hold-s S` override it (`tsx bench/failover.ts --nodes 200 --hold-s 60`).
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { silentLogger, startSimulator, type SimulatorHandle } from "@meridian/node-agent";
import { freePort } from "../scripts/dev-gateway";
import { printTable, summarize } from "./lib/stats";
import { killGroup, spawnGroup } from "./lib/process";
import { bundleGateway, GATEWAY_DURABLE_OBJECTS, startWorkerd, BENCH_GATEWAY_VARS } from "./lib/workerd";

const SECRETS = BENCH_GATEWAY_VARS;
const POLL_MS = 50;
const HEARTBEAT_MS = 1000;
const JITTER_MS = 200;
const LOSS_RATE = 0.01;
const KILL_PCT = 10;
const FREEZE_PCT = 5;

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pins a process (all its threads) to one core when taskset exists. */
function pin(pid: number | undefined, core: number): void {
  if (pid === undefined || !has("taskset")) return;
  spawnSync("taskset", ["-a", "-p", "-c", String(core), String(pid)], { stdio: "ignore" });
}

/** Node id -> health ("healthy", "down", "draining", ...); a node missing from the map is gone. */
async function gatewayFleet(url: string): Promise<Map<string, string>> {
  return new Map([...(await gatewayFleetSince(url))].map(([id, n]) => [id, n.health]));
}

/** Node id -> health and when it took that health (the hub's clock, ms since the epoch). */
async function gatewayFleetSince(url: string): Promise<Map<string, { health: string; since: number }>> {
  const res = await fetch(`${url}/admin/fleet`, { headers: { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` } });
  if (!res.ok) throw new Error(`/admin/fleet answered ${res.status}`);
  const body = (await res.json()) as { nodes: { id: string; health: string; healthSince: string }[] };
  return new Map(body.nodes.map((n) => [n.id, { health: n.health, since: Date.parse(n.healthSince) }]));
}

interface Haproxy {
  process: ChildProcess;
  /** Node id -> server status ("UP", "DOWN", "UP 1/2", ...). */
  status(): Promise<Map<string, string>>;
  stop(): void;
}

function startHaproxy(dir: string, sim: SimulatorHandle): Haproxy {
  const socketPath = join(dir, "haproxy.sock");
  const backends = sim.nodes.map(
    (node, i) =>
      // A node answers an unsigned check with 401 (only the gateway's signed requests are served): alive.
      `backend b_${i}\n  option httpchk GET /n/${node.plan.id}/v1/whoami\n  http-check expect rstatus ^(200|401)$\n  timeout check 1s\n` +
      `  server s 127.0.0.1:${sim.port} check inter 1s fall 2 rise 2\n`,
  );
  const config =
    `global\n  maxconn 4096\n  stats socket ${socketPath} mode 600 level admin\n` +
    `defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n` +
    backends.join("");
  const configPath = join(dir, "haproxy.cfg");
  writeFileSync(configPath, config);
  const child = spawnGroup("haproxy", ["-f", configPath, "-db"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = () => killGroup(child);
  const nodeOfBackend = new Map(sim.nodes.map((node, i) => [`b_${i}`, node.plan.id]));
  const status = () =>
    new Promise<Map<string, string>>((resolve, reject) => {
      if (child.exitCode !== null) {
        reject(new Error(`haproxy exited: ${stderr}`));
        return;
      }
      // `show stat -1 4 -1`: every proxy, servers only.
      const socket = createConnection(socketPath);
      let text = "";
      socket.setEncoding("utf8");
      socket.on("connect", () => socket.write("show stat -1 4 -1\n"));
      socket.on("data", (chunk: string) => (text += chunk));
      socket.on("error", reject);
      socket.on("end", () => {
        const lines = text.split("\n").filter(Boolean);
        const header = (lines[0] ?? "").replace(/^# /, "").split(",");
        const px = header.indexOf("pxname");
        const st = header.indexOf("status");
        const result = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const cells = line.split(",");
          const node = nodeOfBackend.get(cells[px] ?? "");
          if (node !== undefined) result.set(node, cells[st] ?? "");
        }
        resolve(result);
      });
    });
  return { process: child, status, stop };
}

/** Polls `probe` until it holds, or throws `what` after `timeoutMs`. */
async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // Not ready yet.
    }
    if (performance.now() > deadline) throw new Error(`${what} not reached in ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/** Calls `poll` every POLL_MS (start to start; never two at once) until `stop()` holds. */
async function pollLoop(poll: () => Promise<void>, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const started = performance.now();
    await poll();
    const wait = POLL_MS - (performance.now() - started);
    if (wait > 0) await sleep(wait);
  }
}

const round = (x: number) => (Number.isFinite(x) ? Math.round(x) : x);

export async function runFailoverBench(options: { smoke: boolean; nodes?: number; holdMs?: number }): Promise<Record<string, number>> {
  const nodes = options.nodes ?? (options.smoke ? 60 : 1000);
  const holdMs = options.holdMs ?? (options.smoke ? 10_000 : 120_000);
  const chaosAfterMs = options.smoke ? 2_000 : 5_000;
  const dir = mkdtempSync(join(tmpdir(), "meridian-failover-"));
  const cleanups: Array<() => unknown> = [];
  try {
    bundleGateway(dir);
    const gateway = await startWorkerd({ dir, port: await freePort(), module: "index.js", text: SECRETS, durableObjects: GATEWAY_DURABLE_OBJECTS });
    cleanups.push(() => gateway.stop());
    pin(gateway.process.pid, 0);
    if (has("taskset")) {
      // The simulator and the pollers on the other core; the whole machine again afterwards.
      pin(process.pid, 1);
      cleanups.push(() => spawnSync("taskset", ["-a", "-p", "-c", `0-${availableParallelism() - 1}`, String(process.pid)], { stdio: "ignore" }));
    }

    const sim = await startSimulator({
      gatewayUrl: gateway.url,
      adminToken: SECRETS.ADMIN_TOKEN,
      nodes,
      seed: 1,
      prefix: "fo",
      heartbeatMs: HEARTBEAT_MS,
      jitterMs: JITTER_MS,
      lossRate: LOSS_RATE,
      connectConcurrency: 64,
      tokenMs: 1,
      logger: silentLogger,
      nodeLogger: () => silentLogger,
    });
    cleanups.push(() => sim.close({ drain: false }));
    const ids = sim.nodes.map((n) => n.plan.id);
    // Routable, not all "healthy": with 1 % loss some node of a big fleet is always briefly suspect.
    await waitFor(`${nodes} routable nodes on the gateway`, 120_000, async () => {
      const fleet = await gatewayFleet(gateway.url);
      return ids.every((id) => fleet.get(id) === "healthy" || fleet.get(id) === "suspect");
    });

    let haproxy: Haproxy | undefined;
    if (has("haproxy")) {
      haproxy = startHaproxy(dir, sim);
      const h = haproxy;
      cleanups.push(() => h.stop());
      await sleep(300);
      pin(h.process.pid, 0);
      await waitFor(`${nodes} servers UP in HAProxy`, 30_000, async () => {
        const status = await h.status();
        return ids.every((id) => status.get(id) === "UP");
      });
    } else {
      console.log("[failover] haproxy not installed (apt-get install haproxy): its side is skipped");
    }

    const { killed, frozen } = sim.pickChaosVictims(KILL_PCT, FREEZE_PCT, 1);
    const victims = new Set([...killed, ...frozen]);
    const hitAt = new Map<string, number>();
    /** Wall-clock hit times, and when the hub decided "down": detection without the Directory and poll delays. */
    const hitEpoch = new Map<string, number>();
    const hubDecided = new Map<string, number>();
    const gatewayOut = new Map<string, number>();
    const haproxyOut = new Map<string, number>();
    const falseDowns = new Set<string>();
    const falseSuspects = new Set<string>();
    const haproxyFalseDowns = new Set<string>();
    let pollErrors = 0;

    const holdStart = performance.now();
    const hardStop = holdStart + holdMs + 30_000;
    let chaosDone = false;
    const allSeen = (seen: Map<string, number>) => chaosDone && [...victims].every((id) => seen.has(id));
    const finished = () => {
      const now = performance.now();
      if (now > hardStop) return true;
      return now - holdStart >= holdMs && allSeen(gatewayOut) && (haproxy === undefined || allSeen(haproxyOut));
    };

    const gatewayPoller = pollLoop(async () => {
      let fleet: Map<string, { health: string; since: number }>;
      try {
        fleet = await gatewayFleetSince(gateway.url);
      } catch {
        pollErrors++;
        return;
      }
      const at = performance.now();
      for (const id of ids) {
        const entry = fleet.get(id);
        const health = entry?.health;
        const out = health === undefined || health === "down";
        if (victims.has(id)) {
          if (out && hitAt.has(id) && !gatewayOut.has(id)) {
            gatewayOut.set(id, at);
            if (entry !== undefined) hubDecided.set(id, entry.since);
          }
        } else if (out) falseDowns.add(id);
        else if (health === "suspect") falseSuspects.add(id);
      }
    }, finished);
    const h = haproxy;
    const haproxyPoller =
      h === undefined
        ? Promise.resolve()
        : pollLoop(async () => {
            let status: Map<string, string>;
            try {
              status = await h.status();
            } catch {
              pollErrors++;
              return;
            }
            const at = performance.now();
            for (const id of ids) {
              const out = (status.get(id) ?? "DOWN").startsWith("DOWN");
              if (victims.has(id)) {
                if (out && hitAt.has(id) && !haproxyOut.has(id)) haproxyOut.set(id, at);
              } else if (out) haproxyFalseDowns.add(id);
            }
          }, finished);

    await sleep(chaosAfterMs);
    for (const id of killed) {
      hitAt.set(id, performance.now());
      sim.kill(id);
    }
    for (const id of frozen) {
      hitAt.set(id, performance.now());
      hitEpoch.set(id, Date.now());
      sim.freeze(id);
    }
    chaosDone = true;
    console.log(`[failover] ${nodes} nodes: killed ${killed.length}, froze ${frozen.length} at ${new Date().toISOString()}`);
    await Promise.all([gatewayPoller, haproxyPoller]);

    const detection = (seen: Map<string, number>, group: readonly string[]) => {
      const samples = group.flatMap((id) => {
        const out = seen.get(id);
        const hit = hitAt.get(id);
        return out === undefined || hit === undefined ? [] : [out - hit];
      });
      const missed = group.length - samples.length;
      return { ...summarize(samples), missed };
    };
    const gwClose = detection(gatewayOut, killed);
    const gwSilent = detection(gatewayOut, frozen);
    const hubSilent = summarize(frozen.flatMap((id) => {
      const decided = hubDecided.get(id);
      const hit = hitEpoch.get(id);
      return decided === undefined || hit === undefined ? [] : [decided - hit];
    }));
    const hpClose = detection(haproxyOut, killed);
    const hpSilent = detection(haproxyOut, frozen);
    for (const [name, d] of [["gateway close", gwClose], ["gateway silent", gwSilent], ["haproxy close", hpClose], ["haproxy silent", hpSilent]] as const) {
      if (d.missed > 0 && (haproxy !== undefined || name.startsWith("gateway"))) console.log(`[failover] ${name}: ${d.missed} victim(s) never seen down`);
    }
    if (pollErrors > 0) console.log(`[failover] ${pollErrors} poll(s) failed`);

    const results: Record<string, number> = {
      failover_close_ms_p50: round(gwClose.p50),
      failover_close_ms_p99: round(gwClose.p99),
      failover_silent_ms_p50: round(gwSilent.p50),
      failover_silent_ms_p99: round(gwSilent.p99),
      failover_silent_hub_ms_p50: round(hubSilent.p50),
      failover_silent_hub_ms_p99: round(hubSilent.p99),
      failover_false_downs: falseDowns.size,
      failover_false_suspects: falseSuspects.size,
      haproxy_close_ms_p50: round(hpClose.p50),
      haproxy_close_ms_p99: round(hpClose.p99),
      haproxy_silent_ms_p50: round(hpSilent.p50),
      haproxy_silent_ms_p99: round(hpSilent.p99),
    };
    const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Math.round((a / b) * 100) / 100 : "n/a");
    const row = (what: string, gw: number, hp: number) => ({ what, gateway: gw, haproxy: haproxy === undefined ? "n/a" : hp, "gateway/haproxy": haproxy === undefined ? "n/a" : ratio(gw, hp) });
    printTable(
      `Failure detection, ${nodes} nodes, heartbeat ${HEARTBEAT_MS} ms +-${JITTER_MS} ms, ${LOSS_RATE * 100} % loss; killed ${killed.length}, frozen ${frozen.length}; ms from the hit to the first ${POLL_MS} ms poll showing it down`,
      [
        row("killed p50 (ms)", results.failover_close_ms_p50 ?? Number.NaN, results.haproxy_close_ms_p50 ?? Number.NaN),
        row("killed p99 (ms)", results.failover_close_ms_p99 ?? Number.NaN, results.haproxy_close_ms_p99 ?? Number.NaN),
        row("frozen p50 (ms)", results.failover_silent_ms_p50 ?? Number.NaN, results.haproxy_silent_ms_p50 ?? Number.NaN),
        row("frozen p99 (ms)", results.failover_silent_ms_p99 ?? Number.NaN, results.haproxy_silent_ms_p99 ?? Number.NaN),
        { what: "frozen, hub's decision p50 / p99 (ms)", gateway: `${results.failover_silent_hub_ms_p50} / ${results.failover_silent_hub_ms_p99}`, haproxy: "", "gateway/haproxy": "" },
        { what: `false downs in ${holdMs / 1000} s`, gateway: falseDowns.size, haproxy: haproxy === undefined ? "n/a" : haproxyFalseDowns.size, "gateway/haproxy": "" },
        { what: `nodes ever seen suspect (not hit)`, gateway: falseSuspects.size, haproxy: "", "gateway/haproxy": "" },
      ],
    );
    return results;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        console.log(`[failover] cleanup failed: ${String(error)}`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { smoke: { type: "boolean", default: false }, nodes: { type: "string" }, "hold-s": { type: "string" } } });
  const nodes = values.nodes === undefined ? undefined : Number(values.nodes);
  const holdS = values["hold-s"] === undefined ? undefined : Number(values["hold-s"]);
  if ((nodes !== undefined && !(Number.isInteger(nodes) && nodes > 0)) || (holdS !== undefined && !(holdS > 0))) throw new Error("--nodes wants a positive integer and --hold-s a positive number");
  runFailoverBench({ smoke: values.smoke ?? false, ...(nodes === undefined ? {} : { nodes }), ...(holdS === undefined ? {} : { holdMs: holdS * 1000 }) })
    .then((results) => {
      console.log(JSON.stringify(results));
      process.exit(0);
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
}
