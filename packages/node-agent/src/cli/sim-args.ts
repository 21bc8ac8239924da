import { HEARTBEAT_MS_DEFAULT, HEARTBEAT_MS_MAX, HEARTBEAT_MS_MIN } from "@meridian/protocol";
import { DRAIN_TIMEOUT_MS_DEFAULT } from "../connection";
import { DEFAULT_CONNECT_CONCURRENCY } from "../simulator";
import { DEFAULT_TOKEN_MS } from "../workload";
import { COMMON_OPTIONS, UsageError, formatUsage, httpUrlFlag, intFlag, nonEmpty, numberFlag, parseFlags, type Env } from "./common";

export const SIM_COMMAND = "meridian-sim";
const COMMAND = SIM_COMMAND;
const DEFAULT_GATEWAY = "http://127.0.0.1:8787";
const DEFAULT_NODES = 300;

export const SIM_USAGE = formatUsage(
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

export interface SimCliConfig {
  gatewayUrl: string;
  /** Undefined when neither the flag nor the environment has one (then ./.dev.vars is read). */
  adminToken: string | undefined;
  nodes: number;
  seed: number;
  prefix: string;
  host: string;
  port: number;
  publicUrl: string | undefined;
  heartbeatMs: number | undefined;
  tokenMs: number | undefined;
  connectConcurrency: number | undefined;
  drainTimeoutMs: number | undefined;
  jitterMs: number | undefined;
  lossRate: number;
  chaosKillPct: number;
  chaosFreezePct: number;
  chaosAtS: number;
  verbose: boolean;
}

/** Reads meridian-sim's command line (pure: no I/O); throws UsageError for any bad value. */
export function parseSimArgs(argv: readonly string[], env: Env): { help: true } | { help: false; config: SimCliConfig } {
  const values = parseFlags(argv, {
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
  } as const);
  if (values.help === true) return { help: true };

  const prefix = values.prefix ?? "sim";
  if (!/^[a-z0-9][a-z0-9-]*$/.test(prefix)) throw new UsageError(`--prefix must be a-z, 0-9 and '-', got "${prefix}"`);
  const lossPct = numberFlag("loss", values.loss, 0, 100) ?? 0;
  const chaosKillPct = numberFlag("chaos-kill-pct", values["chaos-kill-pct"], 0, 100) ?? 0;
  const chaosFreezePct = numberFlag("chaos-freeze-pct", values["chaos-freeze-pct"], 0, 100) ?? 0;
  if (chaosKillPct + chaosFreezePct > 100) throw new UsageError("--chaos-kill-pct plus --chaos-freeze-pct must not exceed 100");
  return {
    help: false,
    config: {
      gatewayUrl: httpUrlFlag("gateway", values.gateway ?? DEFAULT_GATEWAY),
      adminToken: nonEmpty(values["admin-token"]) ?? nonEmpty(env.ADMIN_TOKEN),
      nodes: intFlag("nodes", values.nodes, 0, 100_000) ?? DEFAULT_NODES,
      seed: intFlag("seed", values.seed, 0, 2 ** 32 - 1) ?? 1,
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
      chaosKillPct,
      chaosFreezePct,
      chaosAtS: numberFlag("chaos-at-s", values["chaos-at-s"], 0, 7 * 86_400) ?? 0,
      verbose: values.verbose === true,
    },
  };
}
