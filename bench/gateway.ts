/**
 * The gateway against its baselines on the same machine, one after another in one run:
 * the node directly, HAProxy, a bare workerd fetch-proxy, and the gateway (policy +
 * routing + proxy), all in front of the same simulated node.
 * The Workers run in the bare workerd binary (bench/lib/workerd.ts explains why).
 * Servers are pinned to core 0 and load generators to core 1 when taskset exists.
 */
import { execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request as httpRequest } from "node:http";
import { REPO_ROOT, freePort } from "../scripts/dev-gateway";
import { killGroup, spawnGroup, startSimProcess } from "./lib/process";
import { summarize } from "./lib/stats";
import { bundleGateway, GATEWAY_DURABLE_OBJECTS, startWorkerd } from "./lib/workerd";

const TOKYO = { "x-client-lat": "35.6762", "x-client-lon": "139.6503", "x-client-country": "JP" };
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** Pins a process group (wrangler, workerd, node) to one core. */
function pinGroup(pid: number | undefined, core: number): void {
  if (pid === undefined || !has("taskset")) return;
  const pids = spawnSync("pgrep", ["-g", String(pid)]).stdout.toString().split("\n").filter(Boolean);
  for (const p of [String(pid), ...pids]) spawnSync("taskset", ["-a", "-p", "-c", String(core), p], { stdio: "ignore" });
}

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
}

/** Closed-loop requests/s with wrk (32 connections), after a warm-up. */
function wrkRps(target: Target, seconds: number): number {
  const args = ["-t1", "-c32", `-d${seconds}s`, ...Object.entries(target.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), target.url];
  const cmd = has("taskset") ? ["taskset", "-c", "1", "wrk", ...args] : ["wrk", ...args];
  const warm = ["-t1", "-c8", "-d1s", ...args.slice(3)];
  spawnSync(has("taskset") ? "taskset" : "wrk", has("taskset") ? ["-c", "1", "wrk", ...warm] : warm, { stdio: "ignore" });
  const out = execFileSync(cmd[0] ?? "wrk", cmd.slice(1), { encoding: "utf8" });
  const match = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (non2xx) throw new Error(`${target.name}: ${non2xx[1]} non-2xx answers under load:\n${out}`);
  return match?.[1] ? Number(match[1]) : Number.NaN;
}

/** Open-loop latency: requests start on a fixed schedule whether or not earlier ones finished. */
async function openLoopLatencyUs(target: Target, rate: number, seconds: number): Promise<{ p50: number; p99: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const url = new URL(target.url);
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname + url.search, headers: target.headers, agent }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - started) / 1000) : reject(new Error(`${target.name}: status ${res.statusCode}`))));
      });
      req.on("error", reject);
      req.end();
    });
  for (let i = 0; i < 200; i++) await one();
  const samples: Promise<number>[] = [];
  const interval = 1000 / rate;
  const begin = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = begin + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    samples.push(one());
  }
  const done = await Promise.all(samples);
  agent.destroy();
  const s = summarize(done);
  return { p50: s.p50, p99: s.p99 };
}

/** The simulated fleet as its own process, so it can sit on the servers' core. */
async function startFleetProcess(gatewayUrl: string, adminToken: string, port: number): Promise<ChildProcess> {
  const child = await startSimProcess(gatewayUrl, adminToken, ["--nodes", "140", "--seed", "1", "--prefix", "bench", "--port", String(port), "--token-ms", "1"]);
  // Wait until the gateway's snapshot holds the whole fleet.
  for (let i = 0; i < 100; i++) {
    const body = (await (await fetch(`${gatewayUrl}/route`, { headers: TOKYO })).json()) as { fleetSize: number };
    if (body.fleetSize >= 140) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

function startHaproxy(port: number, upstreamPort: number, dir: string): ChildProcess {
  const config = join(dir, "haproxy.cfg");
  writeFileSync(
    config,
    `global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\n` +
      `frontend fe\n  bind 127.0.0.1:${port}\n  default_backend be\nbackend be\n  server node 127.0.0.1:${upstreamPort}\n`,
  );
  return spawnGroup("haproxy", ["-f", config, "-db"], { stdio: "ignore" });
}

export async function runGatewayBench(options: { smoke: boolean }): Promise<Record<string, number>> {
  const seconds = options.smoke ? 2 : 10;
  const latencySeconds = options.smoke ? 2 : 8;
  const rate = options.smoke ? 100 : 300;
  const results: Record<string, number> = {};
  const dir = mkdtempSync(join(tmpdir(), "meridian-bench-"));
  const secrets = { ADMIN_TOKEN: "bench-admin-token-0123456789", NODE_CREDENTIAL_KEY: "bench-credential-key-0123456789abcdef0123456789" };
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    const gatewayDir = join(dir, "gateway");
    results.bundle_gzip_bytes = bundleGateway(gatewayDir);
    const gatewayStartedAt = performance.now();
    const gateway = await startWorkerd({
      dir: gatewayDir,
      port: await freePort(),
      module: "index.js",
      text: { ...secrets, DEV_TRUST_CLIENT_GEO: "true" },
      durableObjects: GATEWAY_DURABLE_OBJECTS,
    });
    cleanups.push(() => gateway.stop());
    results.workerd_start_ms = Math.round(performance.now() - gatewayStartedAt);
    const upstreamPort = await freePort();
    const fleet = await startFleetProcess(gateway.url, secrets.ADMIN_TOKEN, upstreamPort);
    cleanups.push(() => killGroup(fleet));

    // Cold start: the first routed request of a fresh isolate (snapshot and policy fetched).
    const coldAt = performance.now();
    const first = await fetch(`${gateway.url}/route`, { headers: TOKYO });
    results.cold_start_ms = Math.round((performance.now() - coldAt) * 10) / 10;
    const decision = (await first.json()) as { node: { id: string } | null; fleetSize: number };
    if (!decision.node) throw new Error(`no Tokyo node in the simulated fleet (${JSON.stringify(decision).slice(0, 200)})`);
    // The simulator serves every node at /n/<id>: the same upstream for every target.
    const node = { endpoint: `http://127.0.0.1:${upstreamPort}/n/${decision.node.id}` };
    const path = "/v1/whoami";

    const bareDir = join(dir, "bare");
    mkdirSync(bareDir);
    copyFileSync(join(REPO_ROOT, "infra/bench/bare-proxy/worker.js"), join(bareDir, "worker.js"));
    const bare = await startWorkerd({ dir: bareDir, port: await freePort(), module: "worker.js", text: { UPSTREAM: node.endpoint } });
    cleanups.push(() => bare.stop());
    const targets: Target[] = [
      { name: "direct", url: `${node.endpoint}${path}`, headers: {} },
      { name: "bare_workerd", url: `${bare.url}${path}`, headers: {} },
      { name: "gateway", url: `${gateway.url}${path}`, headers: TOKYO },
    ];
    if (has("haproxy")) {
      const haproxyPort = await freePort();
      const haproxy = startHaproxy(haproxyPort, upstreamPort, dir);
      cleanups.push(() => killGroup(haproxy));
      await new Promise((r) => setTimeout(r, 300));
      pinGroup(haproxy.pid, 0);
      targets.push({ name: "haproxy", url: `http://127.0.0.1:${haproxyPort}${new URL(node.endpoint).pathname}${path}`, headers: {} });
    } else {
      console.log("[bench] haproxy not installed (apt-get install haproxy): its baseline is skipped");
    }
    pinGroup(gateway.process.pid, 0);
    pinGroup(bare.process.pid, 0);
    pinGroup(fleet.pid, 0);
    // This process is the open-loop generator: the other core.
    if (has("taskset")) spawnSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" });

    for (const target of targets) {
      const latency = await openLoopLatencyUs(target, rate, latencySeconds);
      results[`${target.name}_latency_us_p50`] = Math.round(latency.p50);
      results[`${target.name}_latency_us_p99`] = Math.round(latency.p99);
      if (has("wrk")) results[`${target.name}_rps`] = Math.round(wrkRps(target, seconds));
    }
    const bareP50 = results.bare_workerd_latency_us_p50 ?? Number.NaN;
    const bareP99 = results.bare_workerd_latency_us_p99 ?? Number.NaN;
    results.gateway_added_latency_us_p50 = (results.gateway_latency_us_p50 ?? Number.NaN) - bareP50;
    results.gateway_added_latency_us_p99 = (results.gateway_latency_us_p99 ?? Number.NaN) - bareP99;
    results.gateway_added_over_direct_us_p50 = (results.gateway_latency_us_p50 ?? Number.NaN) - (results.direct_latency_us_p50 ?? Number.NaN);
    if (results.gateway_rps !== undefined && results.bare_workerd_rps !== undefined) results.gateway_to_bare_rps_ratio = Math.round((results.gateway_rps / results.bare_workerd_rps) * 100) / 100;

    results.policy_propagation_ms_p99 = await policyPropagation(gateway.url, secrets.ADMIN_TOKEN, options.smoke ? 3 : 10);
    return results;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // Best effort: the next cleanup still runs.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Publishes a deny for Tokyo and lifts it again, timing acknowledgement to enforcement. */
async function policyPropagation(gatewayUrl: string, adminToken: string, rounds: number): Promise<number> {
  const admin = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const deny of [true, false]) {
      const live = await fetch(`${gatewayUrl}/admin/policy`, { headers: admin });
      const { document } = (await live.json()) as { document: { rules: { id: string }[] } };
      const rules = document.rules.filter((r) => r.id !== "bench-deny-nrt");
      if (deny) rules.push({ id: "bench-deny-nrt", effect: "deny", reason: "benchmark", match: { nodeRegion: ["nrt"] } } as { id: string });
      const put = await fetch(`${gatewayUrl}/admin/policy`, {
        method: "PUT",
        headers: { ...admin, "if-match": live.headers.get("etag") ?? "", "x-meridian-reason": "benchmark" },
        body: JSON.stringify({ ...document, rules }),
      });
      if (put.status !== 200) throw new Error(`publish failed: ${put.status} ${await put.text()}`);
      const ackAt = performance.now();
      for (;;) {
        const body = (await (await fetch(`${gatewayUrl}/route`, { headers: TOKYO })).json()) as { node: { region: string } | null };
        if ((body.node?.region === "nrt") !== deny) break;
        if (performance.now() - ackAt > 5000) throw new Error("policy not enforced within 5 s");
      }
      samples.push(performance.now() - ackAt);
    }
  }
  return Math.round(summarize(samples).p99);
}
