/**
 * The gateway against its baselines on the same machine in one run: the node directly,
 * HAProxy, a bare workerd fetch-proxy, Portkey's gateway (the peer, under Node) and the
 * gateway (policy + routing + proxy), all forwarding the same POST /v1/chat/completions to
 * the same simulated node. The targets take turns: every round measures each of them once,
 * in a rotated order, and the figures are medians over the rounds with their range, so a
 * neighbour's load on the shared machine hits every target alike.
 * The Workers run in the bare workerd binary (bench/lib/workerd.ts explains why).
 * Servers are pinned to core 0 and load generators to core 1 when taskset exists.
 */
import { execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request as httpRequest } from "node:http";
import { REPO_ROOT, freePort } from "../scripts/dev-gateway";
import { killGroup, spawnGroup, startSimProcess, untilReady } from "./lib/process";
import { printTable, summarize } from "./lib/stats";
import { countStorageSyscalls, cpuSeconds, iowaitPercent, machineCpuTimes } from "./lib/sysstat";
import { bundleGateway, GATEWAY_DURABLE_OBJECTS, startWorkerd, BENCH_GATEWAY_VARS, benchTenantAuth } from "./lib/workerd";

const TOKYO = { "x-client-lat": "35.6762", "x-client-lon": "139.6503", "x-client-country": "JP" };
/** The bench tenant's key header, once the gateway is up (benchTenantAuth). */
let clientAuth: Record<string, string> = {};
/** The request every target forwards: a one-token chat completion (the node answers at once). */
const CHAT_PATH = "/v1/chat/completions";
/**
 * The same chat for every target, naming a model every simulated GPU node serves (and the
 * bench's upstream too): Portkey puts a default model of its own into a chat without one.
 */
const CHAT_BODY = JSON.stringify({ model: "llama-3.1-8b-instruct", messages: [{ role: "user", content: "Say one word." }], max_tokens: 1 });
const JSON_TYPE = { "content-type": "application/json" };
/** The pinned peer (package.json): Portkey's open-source gateway, as the issue measured it. */
const PORTKEY_SERVER = join(REPO_ROOT, "node_modules/@portkey-ai/gateway/build/start-server.js");
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** Pins a process group (wrangler, workerd, node) to one core. */
function pinGroup(pid: number | undefined, core: number): void {
  if (pid === undefined || !has("taskset")) return;
  const pids = spawnSync("pgrep", ["-g", String(pid)]).stdout.toString().split("\n").filter(Boolean);
  for (const p of [String(pid), ...pids]) spawnSync("taskset", ["-a", "-p", "-c", String(core), p], { stdio: "ignore" });
}

interface Target {
  /** Result key prefix: `${name}_rps`, `${name}_latency_us_p50`, ... */
  name: string;
  label: string;
  url: string;
  headers: Record<string, string>;
  /** The serving process, for CPU per request (the node directly: the simulator process). */
  pid: number | undefined;
}

interface WrkRun {
  rps: number;
  requests: number;
  cpuUsPerRequest: number;
  iowaitPct: number;
}

/** Closed-loop requests/s with wrk (32 connections, POSTing the chat body), after a warm-up; the server's CPU over the run. */
function wrkRun(target: Target, seconds: number, script: string): WrkRun {
  const args = ["-t1", "-c32", `-d${seconds}s`, "-s", script, ...Object.entries(target.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), target.url];
  const pinned = (wrkArgs: string[]): [string, string[]] => (has("taskset") ? ["taskset", ["-c", "1", "wrk", ...wrkArgs]] : ["wrk", wrkArgs]);
  const [warmCmd, warmArgs] = pinned(["-t1", "-c8", "-d1s", ...args.slice(3)]);
  spawnSync(warmCmd, warmArgs, { stdio: "ignore" });
  const [cmd, cmdArgs] = pinned(args);
  const cpuBefore = cpuSeconds(target.pid);
  const machineBefore = machineCpuTimes();
  const out = execFileSync(cmd, cmdArgs, { encoding: "utf8" });
  const cpu = cpuSeconds(target.pid) - cpuBefore;
  const iowaitPct = iowaitPercent(machineBefore, machineCpuTimes());
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const requests = /(\d+) requests in/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (non2xx) throw new Error(`${target.name}: ${non2xx[1]} non-2xx answers under load:\n${out}`);
  const n = requests?.[1] ? Number(requests[1]) : Number.NaN;
  return { rps: rps?.[1] ? Number(rps[1]) : Number.NaN, requests: n, cpuUsPerRequest: (cpu * 1e6) / n, iowaitPct };
}

/**
 * Open-loop latency: requests start on a fixed schedule whether or not earlier ones finished,
 * and each latency runs from its scheduled start, not its actual send: a request the
 * generator sent late (its own event loop busy, sockets all taken) carries that delay, as
 * a real client's would (no coordinated omission).
 */
async function openLoopLatencyUs(target: Target, rate: number, seconds: number): Promise<{ p50: number; p99: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const url = new URL(target.url);
  const headers = { ...target.headers, ...JSON_TYPE, "content-length": String(Buffer.byteLength(CHAT_BODY)) };
  const one = (scheduledAt: number) =>
    new Promise<number>((resolve, reject) => {
      const req = httpRequest({ method: "POST", host: url.hostname, port: url.port, path: url.pathname + url.search, headers, agent }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve((performance.now() - scheduledAt) * 1000) : reject(new Error(`${target.name}: status ${res.statusCode}`))));
      });
      req.on("error", reject);
      req.end(CHAT_BODY);
    });
  for (let i = 0; i < 200; i++) await one(performance.now());
  const samples: Promise<number>[] = [];
  const interval = 1000 / rate;
  const begin = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = begin + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    samples.push(one(due));
  }
  const done = await Promise.all(samples);
  agent.destroy();
  const s = summarize(done);
  return { p50: s.p50, p99: s.p99 };
}

/**
 * Portkey's gateway under Node, bound to 127.0.0.1 (its server binds every interface;
 * bench/lib/loopback-only.mjs narrows that), UI and logs off (--headless, production).
 * Null, with the reason printed, when the package is missing.
 */
async function startPortkey(port: number): Promise<ChildProcess | null> {
  if (!existsSync(PORTKEY_SERVER)) {
    console.log("[bench] @portkey-ai/gateway is not installed (pnpm install): the peer baseline is skipped");
    return null;
  }
  const preload = join(REPO_ROOT, "bench/lib/loopback-only.mjs");
  const child = spawnGroup(process.execPath, ["--import", preload, PORTKEY_SERVER, `--port=${port}`, "--headless"], { stdio: "ignore", env: { ...process.env, NODE_ENV: "production" } });
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`Portkey's gateway exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  killGroup(child);
  throw new Error("Portkey's gateway did not listen within 10 s");
}

const median = (values: number[]) => summarize(values).p50;
const range = (values: number[]) => `${fmt(summarize(values).min)}–${fmt(summarize(values).max)}`;
const fmt = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "n/a");

/**
 * The simulated fleet as its own process, so it can sit on the servers' core. Its nodes
 * advertise the shared upstream (bench/lib/upstream.ts), so the gateway forwards there.
 */
async function startFleetProcess(gatewayUrl: string, adminToken: string, upstreamUrl: string): Promise<ChildProcess> {
  const child = await startSimProcess(gatewayUrl, adminToken, ["--nodes", "140", "--seed", "1", "--prefix", "bench", "--port", String(await freePort()), "--public-url", upstreamUrl, "--token-ms", "0"]);
  // Wait until the gateway's snapshot holds the whole fleet.
  for (let i = 0; i < 100; i++) {
    const body = (await (await fetch(`${gatewayUrl}/route`, { headers: { ...clientAuth, ...TOKYO } })).json()) as { fleetSize: number };
    if (body.fleetSize >= 140) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

/** The shared upstream node server as its own process; resolves once it listens. */
function startUpstream(port: number): Promise<ChildProcess> {
  const child = spawnGroup(process.execPath, ["--import", "tsx", join(REPO_ROOT, "bench/lib/upstream.ts"), "--port", String(port)], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
  return untilReady(child, "upstream", 30_000);
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
  const rounds = options.smoke ? 1 : 3;
  const seconds = options.smoke ? 2 : 5;
  const latencySeconds = options.smoke ? 2 : 5;
  const rate = options.smoke ? 100 : 300;
  const results: Record<string, number> = {};
  const dir = mkdtempSync(join(tmpdir(), "meridian-bench-"));
  const secrets = BENCH_GATEWAY_VARS;
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    const gatewayDir = join(dir, "gateway");
    results.bundle_gzip_bytes = bundleGateway(gatewayDir);
    const gatewayStartedAt = performance.now();
    const gateway = await startWorkerd({
      dir: gatewayDir,
      port: await freePort(),
      module: "index.js",
      text: { ...secrets },
      durableObjects: GATEWAY_DURABLE_OBJECTS,
    });
    cleanups.push(() => gateway.stop());
    results.workerd_start_ms = Math.round(performance.now() - gatewayStartedAt);
    const upstreamPort = await freePort();
    const upstream = await startUpstream(upstreamPort);
    cleanups.push(() => killGroup(upstream));
    clientAuth = await benchTenantAuth(gateway.url);
    const fleet = await startFleetProcess(gateway.url, secrets.ADMIN_TOKEN, `http://127.0.0.1:${upstreamPort}`);
    cleanups.push(() => killGroup(fleet));

    // Cold start: the first routed request of a fresh isolate (snapshot and policy fetched).
    const gpuClient = { ...clientAuth, ...TOKYO, "x-meridian-kind": "gpu" };
    const coldAt = performance.now();
    const first = await fetch(`${gateway.url}/route`, { headers: gpuClient });
    results.cold_start_ms = Math.round((performance.now() - coldAt) * 10) / 10;
    const decision = (await first.json()) as { node: { id: string } | null; fleetSize: number };
    if (!decision.node) throw new Error(`no Tokyo GPU node in the simulated fleet (${JSON.stringify(decision).slice(0, 200)})`);

    // One upstream process serves every node at /n/<id>: the same upstream for every target.
    const node = { endpoint: `http://127.0.0.1:${upstreamPort}/n/${decision.node.id}` };
    const script = join(dir, "chat.lua");
    writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(CHAT_BODY)}\nwrk.headers["content-type"] = "application/json"\n`);

    const bareDir = join(dir, "bare");
    mkdirSync(bareDir);
    copyFileSync(join(REPO_ROOT, "infra/bench/bare-proxy/worker.js"), join(bareDir, "worker.js"));
    const bare = await startWorkerd({ dir: bareDir, port: await freePort(), module: "worker.js", text: { UPSTREAM: node.endpoint } });
    cleanups.push(() => bare.stop());
    const targets: Target[] = [
      { name: "direct", label: "node directly", url: `${node.endpoint}${CHAT_PATH}`, headers: {}, pid: upstream.pid },
      { name: "bare_workerd", label: "bare workerd fetch-proxy", url: `${bare.url}${CHAT_PATH}`, headers: {}, pid: bare.process.pid },
      { name: "gateway", label: "gateway", url: `${gateway.url}${CHAT_PATH}`, headers: gpuClient, pid: gateway.process.pid },
    ];
    if (has("haproxy")) {
      const haproxyPort = await freePort();
      const haproxy = startHaproxy(haproxyPort, upstreamPort, dir);
      cleanups.push(() => killGroup(haproxy));
      await new Promise((r) => setTimeout(r, 300));
      pinGroup(haproxy.pid, 0);
      targets.push({ name: "haproxy", label: "HAProxy", url: `http://127.0.0.1:${haproxyPort}${new URL(node.endpoint).pathname}${CHAT_PATH}`, headers: {}, pid: haproxy.pid });
    } else {
      console.log("[bench] haproxy not installed (apt-get install haproxy): its baseline is skipped");
    }
    const portkeyPort = await freePort();
    const portkey = await startPortkey(portkeyPort);
    if (portkey !== null) {
      cleanups.push(() => killGroup(portkey));
      pinGroup(portkey.pid, 0);
      const headers = { "x-portkey-provider": "openai", "x-portkey-custom-host": `${node.endpoint}/v1`, authorization: "Bearer bench" };
      const url = `http://127.0.0.1:${portkeyPort}${CHAT_PATH}`;
      // A peer that cannot serve this exact request is left out of the run, said so, not fatal.
      const probe = await fetch(url, { method: "POST", headers: { ...headers, ...JSON_TYPE }, body: CHAT_BODY }).catch(() => null);
      if (probe?.status === 200) targets.push({ name: "peer_portkey", label: "Portkey gateway (Node)", url, headers, pid: portkey.pid });
      else console.log(`[bench] Portkey answered ${probe?.status ?? "nothing"} to the bench's chat: its baseline is skipped in this run`);
      await probe?.body?.cancel();
    }
    pinGroup(gateway.process.pid, 0);
    pinGroup(bare.process.pid, 0);
    pinGroup(fleet.pid, 0);
    pinGroup(upstream.pid, 0);
    // This process is the open-loop generator: the other core.
    if (has("taskset")) spawnSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" });

    // The gateway's storage writes with its 140 nodes connected and no requests: the hubs' own.
    const idleWindow = options.smoke ? 2 : 5;
    const idle = await countStorageSyscalls(gateway.process.pid, idleWindow);
    if (idle !== null) {
      results.gateway_idle_fsync_per_s = Math.round(idle.fsyncs / idle.seconds);
      results.gateway_idle_file_writes_per_s = Math.round(idle.fileWrites / idle.seconds);
    }

    const runs = new Map<string, WrkRun[]>(targets.map((t) => [t.name, []]));
    const latencies = new Map<string, { p50: number; p99: number }[]>(targets.map((t) => [t.name, []]));
    const pairedRatios: number[] = [];
    let gatewayFsyncs = 0;
    let gatewayLoadSeconds = 0;
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so that no target always runs first (or right after the gateway's writes).
      const order = targets.map((_, i) => targets[(i + round) % targets.length] as Target);
      const roundRps = new Map<string, number>();
      for (const target of order) {
        const latency = await openLoopLatencyUs(target, rate, latencySeconds);
        latencies.get(target.name)?.push(latency);
        if (!has("wrk")) continue;
        const storage = target.name === "gateway" ? countStorageSyscalls(target.pid, seconds + 1) : null;
        const run = wrkRun(target, seconds, script);
        const counted = await storage;
        if (counted) {
          gatewayFsyncs += counted.fsyncs;
          gatewayLoadSeconds += counted.seconds;
        }
        runs.get(target.name)?.push(run);
        roundRps.set(target.name, run.rps);
      }
      const ratio = (roundRps.get("gateway") ?? Number.NaN) / (roundRps.get("bare_workerd") ?? Number.NaN);
      if (Number.isFinite(ratio)) pairedRatios.push(ratio);
      console.log(`[gateway] round ${round + 1}/${rounds}: ${order.map((t) => `${t.name} ${fmt(roundRps.get(t.name) ?? Number.NaN)}`).join(", ")} req/s`);
    }
    const rows = [];
    for (const target of targets) {
      const r = runs.get(target.name) ?? [];
      const l = latencies.get(target.name) ?? [];
      const p50s = l.map((x) => x.p50);
      const p99s = l.map((x) => x.p99);
      results[`${target.name}_latency_us_p50`] = Math.round(median(p50s));
      results[`${target.name}_latency_us_p99`] = Math.round(median(p99s));
      if (r.length > 0) {
        const rps = r.map((x) => x.rps);
        const cpu = r.map((x) => x.cpuUsPerRequest);
        results[`${target.name}_rps`] = Math.round(median(rps));
        results[`${target.name}_rps_min`] = Math.round(summarize(rps).min);
        results[`${target.name}_rps_max`] = Math.round(summarize(rps).max);
        results[`${target.name}_cpu_us_per_request`] = Math.round(median(cpu));
        results[`${target.name}_iowait_pct`] = Math.round(median(r.map((x) => x.iowaitPct)) * 10) / 10;
        rows.push({
          path: target.label,
          "req/s median": fmt(median(rps)),
          "req/s range": range(rps),
          "cpu µs/req": fmt(median(cpu)),
          "p50 µs": fmt(median(p50s)),
          "p99 µs": fmt(median(p99s)),
          "p99 range": range(p99s),
          "iowait %": (Math.round(median(r.map((x) => x.iowaitPct)) * 10) / 10).toFixed(1),
        });
      }
    }
    printTable(`gateway and baselines: POST ${CHAT_PATH}, ${rounds} interleaved rounds (wrk 32 conns ${seconds} s; open loop ${rate} req/s ${latencySeconds} s, timed from the scheduled send)`, rows);
    if (gatewayLoadSeconds > 0) results.gateway_fsync_per_s = Math.round(gatewayFsyncs / gatewayLoadSeconds);
    const bareP50 = results.bare_workerd_latency_us_p50 ?? Number.NaN;
    const bareP99 = results.bare_workerd_latency_us_p99 ?? Number.NaN;
    results.gateway_added_latency_us_p50 = (results.gateway_latency_us_p50 ?? Number.NaN) - bareP50;
    results.gateway_added_latency_us_p99 = (results.gateway_latency_us_p99 ?? Number.NaN) - bareP99;
    results.gateway_p99_to_bare = Math.round(((results.gateway_latency_us_p99 ?? Number.NaN) / bareP99) * 100) / 100;
    results.gateway_added_over_direct_us_p50 = (results.gateway_latency_us_p50 ?? Number.NaN) - (results.direct_latency_us_p50 ?? Number.NaN);
    if (results.gateway_rps !== undefined && results.bare_workerd_rps !== undefined) {
      results.gateway_to_bare_rps_ratio = Math.round((results.gateway_rps / results.bare_workerd_rps) * 100) / 100;
      console.log(`[gateway] gateway / bare workerd req/s per round: ${pairedRatios.map((r) => r.toFixed(2)).join(", ")}`);
    }
    if (results.gateway_rps !== undefined && results.peer_portkey_rps !== undefined) {
      results.gateway_to_portkey_rps_ratio = Math.round((results.gateway_rps / results.peer_portkey_rps) * 100) / 100;
      results.gateway_to_portkey_cpu_ratio = Math.round(((results.gateway_cpu_us_per_request ?? Number.NaN) / (results.peer_portkey_cpu_us_per_request ?? Number.NaN)) * 100) / 100;
    }

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
        const body = (await (await fetch(`${gatewayUrl}/route`, { headers: { ...clientAuth, ...TOKYO } })).json()) as { node: { region: string } | null };
        if ((body.node?.region === "nrt") !== deny) break;
        if (performance.now() - ackAt > 5000) throw new Error("policy not enforced within 5 s");
      }
      samples.push(performance.now() - ackAt);
    }
  }
  return Math.round(summarize(samples).p99);
}
