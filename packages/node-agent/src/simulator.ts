import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { REGIONS } from "@meridian/regions";
import { ChaosNode, validateChaosOptions, type HttpHandler } from "./chaos";
import { NodeConnection } from "./connection";
import { EnrollmentError, enrollNode } from "./enroll";
import { planFleet, type PlannedNode } from "./fleet";
import { createLogger, describeError, type Logger } from "./log";
import { hashString, seededRandom } from "./random";
import { errorResponse, fetchListener, writeResponse } from "./http-bridge";
import { RequestVerifier } from "./request-auth";
import { NodeWorkload, closeServer, createNodeHandler, listen, reachableUrl } from "./workload";

export interface SimulatorOptions {
  gatewayUrl: string;
  adminToken: string;
  nodes: number;
  seed?: number;
  prefix?: string;
  /** Where the one shared HTTP server listens. */
  host?: string;
  port?: number;
  /** Base URL advertised to the gateway instead of http://host:port (e.g. behind a tunnel). */
  publicUrl?: string;
  heartbeatMs?: number;
  tokenMs?: number;
  /** Enrollments and handshakes in progress at once. */
  connectConcurrency?: number;
  /** How long the ramp waits for one node's welcome before moving on (it keeps retrying). */
  connectTimeoutMs?: number;
  drainTimeoutMs?: number;
  /** Simulator progress and summary lines. */
  logger?: Logger;
  /** Per-node logger; by default only warnings and errors are printed. */
  nodeLogger?: (nodeId: string) => Logger;
  /** Chaos: each ping/heartbeat moves by a uniform offset in +-jitterMs around its time (default 0). */
  jitterMs?: number;
  /** Chaos: probability 0..1 that a ping/heartbeat is skipped (default 0). */
  lossRate?: number;
  /** An explicit fleet instead of the seeded plan (then `nodes`, `seed` and `prefix` are ignored). */
  plan?: readonly PlannedNode[];
  /** Aborting stops the ramp; startSimulator then closes what it started and rejects. */
  signal?: AbortSignal;
}

export interface SimulatedNode {
  plan: PlannedNode;
  endpoint: string;
  workload: NodeWorkload;
  /** Checks the gateway's signature with the key of the node's latest welcome. */
  verifier: RequestVerifier;
  /** Test-only faults of this node (kill, freeze, jitter, loss). */
  chaos: ChaosNode;
  /** The node's HTTP entry (chaos first, then the signed workload); tests may wrap it. */
  serve: HttpHandler;
  /** Undefined when the node could not be enrolled. */
  connection: NodeConnection | undefined;
}

export interface SimulatorHandle {
  nodes: readonly SimulatedNode[];
  port: number;
  /** Nodes whose socket is welcomed right now. */
  connectedCount(): number;
  /** Chaos, like kill -9: the node's socket is cut without a close frame, it never reconnects, its HTTP connections are destroyed. */
  kill(nodeId: string): void;
  /** Chaos, like SIGSTOP: the node sends nothing (socket kept open) and its HTTP requests hang. */
  freeze(nodeId: string): void;
  /** Chaos, like SIGCONT: undoes freeze(). */
  thaw(nodeId: string): void;
  /**
   * Deterministic victims for a chaos run: `killPct` % and `freezePct` % of the nodes (rounded,
   * disjoint), chosen by the fleet seed (or `seed`). Nothing is done to them.
   */
  pickChaosVictims(killPct: number, freezePct: number, seed?: number): { killed: string[]; frozen: string[] };
  /** Drains every node (default) or closes at once, then stops the HTTP server. */
  close(options?: { drain?: boolean }): Promise<void>;
}

export const DEFAULT_CONNECT_CONCURRENCY = 32;

/** A whole fleet in one process: one HTTP server, one socket per node, endpoints `/n/<nodeId>`. */
export async function startSimulator(options: SimulatorOptions): Promise<SimulatorHandle> {
  const startedAt = performance.now();
  const log = options.logger ?? createLogger("sim");
  const nodeLogger = options.nodeLogger ?? ((id: string) => createLogger(`node ${id}`, { quietInfo: true }));
  const concurrency = Math.max(1, options.connectConcurrency ?? DEFAULT_CONNECT_CONCURRENCY);
  const host = options.host ?? "127.0.0.1";
  validateChaosOptions(options);
  const plan = options.plan ?? planFleet({ nodes: options.nodes, seed: options.seed ?? 1, prefix: options.prefix ?? "sim" });

  const nodesById = new Map<string, SimulatedNode>();
  const server = createServer((req, res) => dispatch(nodesById, req, res));
  const port = await listen(server, host, options.port ?? 0);
  const baseUrl = (options.publicUrl ?? reachableUrl(host, port)).replace(/\/+$/, "");
  const nodes: SimulatedNode[] = plan.map((planned) => {
    const logger = nodeLogger(planned.id);
    const workload = new NodeWorkload(planned, { tokenMs: options.tokenMs, logger });
    const verifier = new RequestVerifier(planned.id, logger);
    const chaos = new ChaosNode({ jitterMs: options.jitterMs, lossRate: options.lossRate });
    const handler = createNodeHandler(workload, { verifier, base: `/n/${planned.id}` });
    const node: SimulatedNode = {
      plan: planned,
      endpoint: `${baseUrl}/n/${planned.id}`,
      workload,
      verifier,
      chaos,
      serve: chaos.http(fetchListener(handler, (error, req) => logger.error(`${req.method ?? "?"} ${req.url ?? "?"} failed: ${describeError(error)}`))),
      connection: undefined,
    };
    nodesById.set(planned.id, node);
    return node;
  });
  log.info(`serving ${nodes.length} simulated nodes at ${baseUrl}/n/<node-id>`);

  let closing: Promise<void> | undefined;
  const nodeById = (nodeId: string): SimulatedNode => {
    const node = nodesById.get(nodeId);
    if (node === undefined) throw new Error(`no simulated node ${nodeId}`);
    return node;
  };
  const handle: SimulatorHandle = {
    nodes,
    port,
    connectedCount: () => nodes.filter((node) => node.connection?.state === "ready").length,
    kill: (nodeId) => nodeById(nodeId).chaos.kill(),
    freeze: (nodeId) => nodeById(nodeId).chaos.freeze(),
    thaw: (nodeId) => nodeById(nodeId).chaos.thaw(),
    pickChaosVictims: (killPct, freezePct, seed) => pickChaosVictims(nodes.map((n) => n.plan.id), killPct, freezePct, seed ?? options.seed ?? 1),
    close: ({ drain = true } = {}) => {
      closing ??= (async () => {
        // Frozen nodes resume so they can drain (and their held requests get answers).
        for (const node of nodes) node.chaos.thaw();
        await Promise.all(
          nodes.map((node) => {
            const connection = node.connection;
            if (connection === undefined) return undefined;
            const done = drain ? connection.drain("simulator shutting down") : connection.close();
            return done.catch((error: unknown) => log.error(`closing ${node.plan.id} failed: ${describeError(error)}`));
          }),
        );
        await closeServer(server);
        server.closeAllConnections();
      })();
      return closing;
    },
  };

  try {
    const credentials = await enrollFleet(options, nodes, concurrency, log);
    await connectFleet(options, nodes, credentials, concurrency, nodeLogger, log);
  } catch (error) {
    // Interrupted by the operator: nodes already connected may hold routed requests, so drain them.
    await handle.close({ drain: options.signal?.aborted === true });
    throw error;
  }

  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  log.info(`${describeFleet(plan)}; ${handle.connectedCount()}/${nodes.length} connected in ${seconds} s`);
  return handle;
}

async function enrollFleet(
  options: SimulatorOptions,
  nodes: readonly SimulatedNode[],
  concurrency: number,
  log: Logger,
): Promise<Map<string, string>> {
  const credentials = new Map<string, string>();
  const progress = progressReporter("enrolled", nodes.length, log);
  let failures = 0;
  await forEachLimited(nodes, concurrency, options.signal, async (node) => {
    const { id, kind, region, gpu, capacity, partner, maxMbps } = node.plan;
    try {
      credentials.set(id, await enrollNode(options.gatewayUrl, options.adminToken, { id, kind, region, gpu, capacity, ...(partner ? { partner } : {}), ...(maxMbps ? { maxMbps } : {}), ...(node.plan.pricePerGpuHour !== undefined ? { pricePerGpuHour: node.plan.pricePerGpuHour } : {}) }));
      progress.tick();
    } catch (error) {
      // A refused admin token fails every node the same way: stop at the first.
      if (error instanceof EnrollmentError && (error.status === 401 || error.status === 403)) throw error;
      failures++;
      log.error(`[node ${id}] ${describeError(error)}`);
    }
  });
  if (failures > 0) log.warn(`${failures} node(s) could not be enrolled and stay offline`);
  return credentials;
}

async function connectFleet(
  options: SimulatorOptions,
  nodes: readonly SimulatedNode[],
  credentials: ReadonlyMap<string, string>,
  concurrency: number,
  nodeLogger: (nodeId: string) => Logger,
  log: Logger,
): Promise<void> {
  const enrolled = nodes.filter((node) => credentials.has(node.plan.id));
  const progress = progressReporter("connected", enrolled.length, log);
  const connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
  await forEachLimited(enrolled, concurrency, options.signal, async (node) => {
    const credential = credentials.get(node.plan.id);
    if (credential === undefined) return;
    const { id, kind, gpu, capacity } = node.plan;
    const connection = new NodeConnection({
      ...(node.workload.servedModels.length > 0 ? { models: node.workload.servedModels } : {}),
      gatewayUrl: options.gatewayUrl,
      credential,
      node: id,
      kind,
      gpu,
      capacity,
      endpoint: node.endpoint,
      heartbeatMs: options.heartbeatMs,
      load: node.workload,
      logger: nodeLogger(id),
      drainTimeoutMs: options.drainTimeoutMs,
      runtime: node.chaos.runtime,
    });
    // The gateway's request key for this node: its HTTP server verifies with it from now on.
    connection.on("connected", (welcome) => node.verifier.useKey(welcome.requestKey));
    node.chaos.attach(connection);
    node.connection = connection;
    const outcome = await firstOutcome(connection, connectTimeoutMs);
    if (outcome === "connected") progress.tick();
    else if (outcome === "timeout") log.warn(`[node ${id}] no welcome within ${connectTimeoutMs} ms; still retrying`);
  });
}

/** Seeded shuffle of `ids`; the first round(killPct %) are killed, the next round(freezePct %) frozen. */
export function pickChaosVictims(
  ids: readonly string[],
  killPct: number,
  freezePct: number,
  seed: number,
): { killed: string[]; frozen: string[] } {
  for (const [name, pct] of [["killPct", killPct], ["freezePct", freezePct]] as const) {
    if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new Error(`${name} must be 0..100, got ${pct}`);
  }
  const kills = Math.round((ids.length * killPct) / 100);
  const freezes = Math.min(ids.length - kills, Math.round((ids.length * freezePct) / 100));
  const random = seededRandom(hashString(`chaos:${seed}`));
  const shuffled = [...ids];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j] as string, shuffled[i] as string];
  }
  return { killed: shuffled.slice(0, kills), frozen: shuffled.slice(kills, kills + freezes) };
}

/** Starts the connection and resolves with whichever comes first. */
function firstOutcome(connection: NodeConnection, timeoutMs: number): Promise<"connected" | "fatal" | "timeout"> {
  return new Promise((resolve) => {
    const finish = (outcome: "connected" | "fatal" | "timeout"): void => {
      clearTimeout(timer);
      connection.off("connected", onConnected);
      connection.off("fatal", onFatal);
      resolve(outcome);
    };
    const onConnected = (): void => finish("connected");
    const onFatal = (): void => finish("fatal");
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    connection.on("connected", onConnected);
    connection.on("fatal", onFatal);
    connection.start();
  });
}

/** `/n/<nodeId>/v1/...` goes to that node's HTTP entry. */
function dispatch(nodesById: ReadonlyMap<string, SimulatedNode>, req: IncomingMessage, res: ServerResponse): void {
  const nodeId = /^\/n\/([^/?#]+)(?:[/?#]|$)/.exec(req.url ?? "")?.[1];
  if (nodeId === undefined) {
    void writeResponse(res, errorResponse(404, "not_found", "simulated node paths look like /n/<node-id>/v1/..."));
    return;
  }
  const node = nodesById.get(nodeId);
  if (node === undefined) {
    void writeResponse(res, errorResponse(404, "unknown_node", `no simulated node ${nodeId}`));
    return;
  }
  node.serve(req, res);
}

/** Runs `task` over `items` with at most `limit` running; the first thrown error stops new tasks. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length && signal?.aborted !== true) {
      const item = items[next++];
      if (item === undefined) return;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers = Array.from({ length: Math.min(limit, items.length) }, () => worker());
  await Promise.all(workers);
  if (failure !== undefined) throw failure.error;
  signal?.throwIfAborted();
}

/** Logs `label n/total` at every tenth of the way and at the end. */
function progressReporter(label: string, total: number, log: Logger): { tick(): void } {
  const step = Math.max(1, Math.ceil(total / 10));
  let done = 0;
  return {
    tick: () => {
      done++;
      if (done % step === 0 || done === total) log.info(`${label} ${done}/${total}`);
    },
  };
}

/** "300 nodes (180 gpu: 45 h100, ...; 120 hotspot) in 150/150 regions" */
export function describeFleet(plan: readonly PlannedNode[]): string {
  const byClass = new Map<string, number>();
  let gpuNodes = 0;
  for (const node of plan) {
    if (node.gpu === undefined) continue;
    gpuNodes++;
    byClass.set(node.gpu.class, (byClass.get(node.gpu.class) ?? 0) + 1);
  }
  const classes = [...byClass.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([gpuClass, count]) => `${count} ${gpuClass}`)
    .join(", ");
  const regions = new Set(plan.map((node) => node.region)).size;
  const gpuPart = gpuNodes > 0 ? `${gpuNodes} gpu: ${classes}` : "0 gpu";
  return `${plan.length} nodes (${gpuPart}; ${plan.length - gpuNodes} hotspot) in ${regions}/${REGIONS.length} regions`;
}
