import { parseArgs } from "node:util";
import { HEARTBEAT_MS_DEFAULT, HEARTBEAT_MS_MAX, HEARTBEAT_MS_MIN } from "@meridian/protocol";
import { DRAIN_TIMEOUT_MS_DEFAULT } from "../connection";
import { createLogger, describeError } from "../log";
import { DEFAULT_CONNECT_CONCURRENCY, startSimulator, type SimulatorHandle } from "../simulator";
import { DEFAULT_TOKEN_MS } from "../workload";
import {
  COMMON_OPTIONS,
  UsageError,
  formatUsage,
  httpUrlFlag,
  intFlag,
  onShutdownSignal,
  parseOrUsage,
  readDevVar,
  runMain,
} from "./common";

const COMMAND = "meridian-sim";
const DEFAULT_GATEWAY = "http://127.0.0.1:8787";
const DEFAULT_NODES = 300;

const USAGE = formatUsage(
  `${COMMAND} [options]`,
  "Simulates a whole fleet in one process: enrolls N nodes, serves all their workloads from one\n" +
    "HTTP server (node endpoint http://host:port/n/<node-id>) and keeps one socket per node.\n" +
    "On SIGINT/SIGTERM every node drains and the process exits 0; a second signal exits at once.\n" +
    'Prints `READY {"nodes":N,"connected":M}` on stdout once the ramp is done; logs go to stderr.',
  [
    { flag: "--gateway URL", description: `gateway base URL (default ${DEFAULT_GATEWAY})` },
    {
      flag: "--admin-token T",
      description: "admin token for enrollment (or env ADMIN_TOKEN, else ADMIN_TOKEN in ./.dev.vars)",
    },
    { flag: "--nodes N", description: `fleet size (default ${DEFAULT_NODES})` },
    { flag: "--seed N", description: "fleet seed; the same seed gives the same fleet (default 1)" },
    { flag: "--prefix P", description: 'node id prefix, ids read <prefix>-<region>-<gpu|hotspot>-<n> (default "sim")' },
    { flag: "--host HOST", description: "address the shared workload server binds (default 127.0.0.1)" },
    { flag: "--port N", description: "shared workload server port (default 0 = any free port)" },
    { flag: "--public-url URL", description: "base URL advertised instead of http://host:port" },
    {
      flag: "--heartbeat-ms N",
      description: `heartbeat interval, ${HEARTBEAT_MS_MIN}..${HEARTBEAT_MS_MAX} (default ${HEARTBEAT_MS_DEFAULT})`,
    },
    { flag: "--token-ms N", description: `delay between simulated tokens (default ${DEFAULT_TOKEN_MS})` },
    {
      flag: "--connect-concurrency N",
      description: `enrollments and handshakes in progress at once (default ${DEFAULT_CONNECT_CONCURRENCY})`,
    },
    {
      flag: "--drain-timeout-ms N",
      description: `longest wait for in-flight requests when draining (default ${DRAIN_TIMEOUT_MS_DEFAULT})`,
    },
    { flag: "--jitter-ms N", description: "chaos: move each ping/heartbeat by a uniform offset in +-N ms (default 0)" },
    { flag: "--loss PCT", description: "chaos: skip each ping/heartbeat with this probability, in percent 0..100 (default 0)" },
    { flag: "--chaos-kill-pct P", description: "chaos: at --chaos-at-s, kill -9 P % of the nodes (socket cut, no reconnect; default 0)" },
    { flag: "--chaos-freeze-pct P", description: "chaos: at --chaos-at-s, freeze P % of other nodes (silent, socket open; default 0)" },
    {
      flag: "--chaos-at-s S",
      description:
        'seconds after READY when the chaos happens (default 0); victims follow --seed; prints\n' +
        `${" ".repeat(27)}\`CHAOS {"killed":[ids],"frozen":[ids],"at":<epoch ms>}\` on stdout`,
    },
    { flag: "--verbose", description: "log every node's state changes, not only its problems" },
    { flag: "-h, --help", description: "show this help" },
  ],
);

async function main(): Promise<void> {
  const { values } = parseOrUsage(() =>
    parseArgs({
      options: {
        ...COMMON_OPTIONS,
        nodes: { type: "string" },
        seed: { type: "string" },
        prefix: { type: "string" },
        "connect-concurrency": { type: "string" },
        "jitter-ms": { type: "string" },
        loss: { type: "string" },
        "chaos-kill-pct": { type: "string" },
        "chaos-freeze-pct": { type: "string" },
        "chaos-at-s": { type: "string" },
        verbose: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }),
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }

  const adminToken = values["admin-token"] || process.env.ADMIN_TOKEN || readDevVar("ADMIN_TOKEN");
  if (!adminToken) {
    throw new UsageError("no admin token: give --admin-token, set ADMIN_TOKEN, or put ADMIN_TOKEN in ./.dev.vars");
  }
  const prefix = values.prefix ?? "sim";
  if (!/^[a-z0-9][a-z0-9-]*$/.test(prefix)) throw new UsageError(`--prefix must be a-z, 0-9 and '-', got "${prefix}"`);

  const lossPct = numberFlag("loss", values.loss, 0, 100) ?? 0;
  const chaosKillPct = numberFlag("chaos-kill-pct", values["chaos-kill-pct"], 0, 100) ?? 0;
  const chaosFreezePct = numberFlag("chaos-freeze-pct", values["chaos-freeze-pct"], 0, 100) ?? 0;
  if (chaosKillPct + chaosFreezePct > 100) throw new UsageError("--chaos-kill-pct plus --chaos-freeze-pct must not exceed 100");
  const chaosAtS = numberFlag("chaos-at-s", values["chaos-at-s"], 0, 7 * 86_400) ?? 0;
  const seed = intFlag("seed", values.seed, 0, 2 ** 32 - 1) ?? 1;

  const log = createLogger("sim");
  const verbose = values.verbose === true;
  const interrupted = new AbortController();
  let handle: SimulatorHandle | undefined;

  onShutdownSignal((signal) => {
    log.info(`${signal}: draining every node (send it again to exit at once)`);
    if (handle === undefined) {
      interrupted.abort(new Error(`interrupted by ${signal}`)); // the ramp stops and drains what it started
      return;
    }
    handle
      .close({ drain: true })
      .then(() => {
        log.info("all nodes drained");
        process.exit(0);
      })
      .catch((error: unknown) => {
        log.error(`shutdown failed: ${describeError(error)}`);
        process.exit(1);
      });
  });

  try {
    handle = await startSimulator({
      gatewayUrl: httpUrlFlag("gateway", values.gateway ?? DEFAULT_GATEWAY),
      adminToken,
      nodes: intFlag("nodes", values.nodes, 0, 100_000) ?? DEFAULT_NODES,
      seed,
      prefix,
      host: values.host ?? "127.0.0.1",
      port: intFlag("port", values.port, 0, 65_535) ?? 0,
      publicUrl: values["public-url"] === undefined ? undefined : httpUrlFlag("public-url", values["public-url"]),
      heartbeatMs: intFlag("heartbeat-ms", values["heartbeat-ms"], HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX),
      tokenMs: intFlag("token-ms", values["token-ms"], 0, 60_000),
      connectConcurrency: intFlag("connect-concurrency", values["connect-concurrency"], 1, 10_000),
      drainTimeoutMs: intFlag("drain-timeout-ms", values["drain-timeout-ms"], 0, 24 * 3_600_000),
      jitterMs: intFlag("jitter-ms", values["jitter-ms"], 0, HEARTBEAT_MS_MAX),
      lossRate: lossPct / 100,
      logger: log,
      nodeLogger: (id) => createLogger(`node ${id}`, { quietInfo: !verbose }),
      signal: interrupted.signal,
    });
  } catch (error) {
    if (interrupted.signal.aborted) {
      log.info("stopped during the ramp; nodes drained");
      process.exit(0);
    }
    throw error;
  }
  process.stdout.write(`READY ${JSON.stringify({ nodes: handle.nodes.length, connected: handle.connectedCount() })}\n`);
  if (chaosKillPct > 0 || chaosFreezePct > 0) {
    const fleet = handle;
    // unref: the timer alone must not keep the process alive (the sockets and server do).
    setTimeout(() => {
      const victims = fleet.pickChaosVictims(chaosKillPct, chaosFreezePct, seed);
      const at = Date.now();
      for (const id of victims.killed) fleet.kill(id);
      for (const id of victims.frozen) fleet.freeze(id);
      process.stdout.write(`CHAOS ${JSON.stringify({ killed: victims.killed, frozen: victims.frozen, at })}\n`);
      log.info(`chaos: killed ${victims.killed.length}, froze ${victims.frozen.length} node(s)`);
    }, chaosAtS * 1000).unref();
  }
}

/** Parses a decimal flag value within bounds; undefined stays undefined. */
function numberFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(value.trim())) throw new UsageError(`--${name} must be a number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be in ${min}..${max}, got ${n}`);
  return n;
}

runMain(COMMAND, main);
