import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import WebSocket, { type RawData } from "ws";
import {
  CloseCode,
  GatewayMessageSchema,
  HEARTBEAT_MS_DEFAULT,
  HEARTBEAT_MS_MAX,
  HEARTBEAT_MS_MIN,
  HelloSchema,
  issuesText,
  PING_FRAME,
  PONG_FRAME,
  PROTOCOL_VERSION,
  type GatewayError,
  type GpuHardware,
  type Heartbeat,
  type Hello,
  type NodeKind,
  type Welcome,
} from "@meridian/protocol";
import { describeError, silentLogger, type Logger } from "./log";
import type { LoadSnapshot, LoadSource } from "./workload";

export const AGENT_VERSION = "meridian-node/0.1.0";

export const BACKOFF_BASE_MS = 250;
export const BACKOFF_FACTOR = 2;
export const BACKOFF_CAP_MS = 15_000;
/** A connection that lived this long was healthy, so the next failure starts the backoff afresh. */
export const STABLE_CONNECTION_MS = 10_000;
/** Send a full heartbeat at least every this many intervals, even when nothing changed. */
export const HEARTBEAT_EVERY_INTERVALS = 5;
/** A load move this large is worth a heartbeat. */
export const LOAD_CHANGE_THRESHOLD = 0.05;
export const DRAIN_TIMEOUT_MS_DEFAULT = 30_000;

/** Gateway frames are small JSON messages; anything bigger is a bug or an attack. */
const MAX_GATEWAY_FRAME_BYTES = 64 * 1024;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long to wait for welcome after hello before trying again. */
const WELCOME_TIMEOUT_MS = 10_000;
/** How long a closing handshake may take before the socket is cut. */
const CLOSE_TIMEOUT_MS = 3_000;
/** Upgrade refusals are logged with at most this much of their body. */
const MAX_REFUSAL_BODY_CHARS = 2_000;

/** Close codes after which reconnecting cannot help: wrong identity, unsupported protocol. */
/**
 * Closes that retrying cannot fix. 4409 counts: the agent holds one socket at a time, so a
 * 4409 on it means another process took over this node's identity (a flap's 4409 lands on
 * the server side of the already dead socket); two agents must not replace each other forever.
 */
const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCode.identityMismatch, CloseCode.unsupportedProtocol, CloseCode.replaced]);
/** Upgrade answers that mean the credential itself is bad. */
const FATAL_UPGRADE_STATUSES: ReadonlySet<number> = new Set([401, 403]);

/**
 * Full-jitter exponential backoff: uniform in [0, min(cap, base * factor^attempt)).
 * `attempt` counts failures since the last stable connection, starting at 0.
 */
export function backoffDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * BACKOFF_FACTOR ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/** Whether this interval carries a full heartbeat (something changed, or it is time) or just a ping. */
export function shouldSendHeartbeat(
  previous: LoadSnapshot | undefined,
  current: LoadSnapshot,
  intervalsSinceHeartbeat: number,
): boolean {
  if (previous === undefined || intervalsSinceHeartbeat >= HEARTBEAT_EVERY_INTERVALS) return true;
  return (
    current.inFlight !== previous.inFlight ||
    current.free !== previous.free ||
    current.tier !== previous.tier ||
    current.users !== previous.users ||
    Math.abs((current.congestion ?? 0) - (previous.congestion ?? 0)) >= LOAD_CHANGE_THRESHOLD - 1e-9 ||
    // The epsilon keeps a move of exactly 0.05 (e.g. 0.5 -> 0.45) from losing to float rounding.
    Math.abs(current.load - previous.load) >= LOAD_CHANGE_THRESHOLD - 1e-9
  );
}

/** `http(s)://gateway[/base]` (or ws/wss) -> `ws(s)://gateway[/base]/nodes/connect`. */
export function nodeSocketUrl(gatewayUrl: string): string {
  const url = new URL(gatewayUrl);
  const schemes: Record<string, string> = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" };
  const scheme = schemes[url.protocol];
  if (scheme === undefined) throw new Error(`gateway URL must be http(s) or ws(s), got ${gatewayUrl}`);
  url.protocol = scheme;
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/nodes/connect`;
  url.search = "";
  url.hash = "";
  return url.toString();
}

export interface NodeConnectionOptions {
  /** Gateway base URL, http(s) or ws(s). */
  gatewayUrl: string;
  credential: string;
  node: string;
  kind: NodeKind;
  gpu?: GpuHardware;
  capacity: number;
  /** Base URL where the node serves client traffic (no trailing slash). */
  endpoint: string;
  heartbeatMs?: number;
  load: LoadSource;
  logger?: Logger;
  drainTimeoutMs?: number;
  /** Injected for deterministic tests. */
  random?: () => number;
  /**
   * Chaos: each ping/heartbeat goes out at its nominal time plus a uniform offset in
   * [-jitterMs, +jitterMs] (default 0).
   */
  jitterMs?: number;
  /** Chaos: probability (0..1) that a ping/heartbeat frame is silently skipped (default 0). */
  lossRate?: number;
}

/** Throws when chaos options are out of range; returns them with defaults applied. */
export function validateChaosOptions(options: { jitterMs?: number; lossRate?: number }): { jitterMs: number; lossRate: number } {
  const jitterMs = options.jitterMs ?? 0;
  const lossRate = options.lossRate ?? 0;
  if (!Number.isFinite(jitterMs) || jitterMs < 0 || jitterMs > HEARTBEAT_MS_MAX) {
    throw new Error(`jitterMs must be a number in 0..${HEARTBEAT_MS_MAX}, got ${jitterMs}`);
  }
  if (!Number.isFinite(lossRate) || lossRate < 0 || lossRate > 1) {
    throw new Error(`lossRate must be a probability in 0..1, got ${lossRate}`);
  }
  return { jitterMs, lossRate };
}

export interface NodeConnectionEvents {
  /** The gateway accepted the hello. */
  connected: [welcome: Welcome];
  disconnected: [code: number, reason: string];
  /** A reconnect is scheduled in `delayMs`. */
  reconnecting: [delayMs: number, attempt: number];
  /** The connection gave up for good (bad credential, identity mismatch...). */
  fatal: [error: Error];
  /** A drain finished and the socket is closed. */
  drained: [];
}

export type ConnectionState = "idle" | "connecting" | "awaiting-welcome" | "ready" | "waiting" | "closed";

interface UpgradeRefusal {
  status: number;
  body: string;
}

/** One node's socket to the gateway: hello, heartbeats, reconnects, drain. */
export class NodeConnection extends EventEmitter<NodeConnectionEvents> {
  readonly nodeId: string;
  readonly socketUrl: string;
  private readonly options: NodeConnectionOptions;
  private readonly hello: Hello;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly jitterMs: number;
  private readonly lossRate: number;

  private connectionState: ConnectionState = "idle";
  private socket: WebSocket | undefined;
  private socketOpenedAt: number | undefined;
  private upgradeRefusal: UpgradeRefusal | undefined;
  private lastGatewayError: GatewayError | undefined;
  private lastSocketError: string | undefined;
  private failedAttempts = 0;
  private heartbeatMs: number;
  private heartbeatSeq = 0;
  private lastHeartbeat: LoadSnapshot | undefined;
  private intervalsSinceHeartbeat = 0;
  /** When the oldest unanswered ping was sent; detects half-open sockets. */
  private pingOutstandingSince: number | undefined;
  private welcomedRegion: string | undefined;

  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Nominal time of the next heartbeat tick; jitter is applied around it, without drift. */
  private nextTickAt = 0;
  private welcomeTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;

  /** Set once close(), a drain or a fatal error ends the connection: never reconnect after. */
  private stopping = false;
  private draining = false;
  private drainPromise: Promise<void> | undefined;
  private readonly closeWaiters: Array<() => void> = [];
  /** Chaos: killed (kill -9) or frozen (SIGSTOP). */
  private killed = false;
  private frozen = false;
  /** Work that arrived while frozen, run on thaw in order. */
  private readonly frozenBacklog: Array<() => void> = [];

  constructor(options: NodeConnectionOptions) {
    super();
    this.options = options;
    this.nodeId = options.node;
    this.logger = options.logger ?? silentLogger;
    this.random = options.random ?? Math.random;
    const chaos = validateChaosOptions(options);
    this.jitterMs = chaos.jitterMs;
    this.lossRate = chaos.lossRate;
    this.socketUrl = nodeSocketUrl(options.gatewayUrl);
    // Validate up front so a bad endpoint or capacity fails at startup, not as a gateway close.
    const hello = HelloSchema.safeParse({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      node: options.node,
      kind: options.kind,
      gpu: options.gpu,
      capacity: options.capacity,
      endpoint: options.endpoint,
      heartbeatMs: options.heartbeatMs ?? HEARTBEAT_MS_DEFAULT,
      agent: AGENT_VERSION,
    });
    if (!hello.success) {
      throw new Error(`node ${options.node}: invalid hello (${issuesText(hello.error, "hello")})`);
    }
    this.hello = hello.data;
    this.heartbeatMs = this.hello.heartbeatMs;
  }

  get state(): ConnectionState {
    return this.connectionState;
  }

  /** Region the gateway placed the node in (from the last welcome). */
  get region(): string | undefined {
    return this.welcomedRegion;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get isKilled(): boolean {
    return this.killed;
  }

  get isFrozen(): boolean {
    return this.frozen;
  }

  /**
   * Chaos, like kill -9: the socket is cut without a close frame and nothing reconnects.
   * The gateway sees an abrupt close (1006).
   */
  kill(): void {
    if (this.killed) return;
    this.killed = true;
    this.frozen = false;
    this.frozenBacklog.length = 0;
    this.stopping = true;
    this.clearAllTimers();
    const socket = this.socket;
    if (socket === undefined) {
      this.connectionState = "closed";
      return;
    }
    socket.terminate(); // the close event finishes the bookkeeping (stopping: no reconnect)
  }

  /**
   * Chaos, like SIGSTOP: no frame goes out (no pings, heartbeats or reconnects) and gateway
   * frames are held, while the socket stays open. thaw() resumes.
   */
  freeze(): void {
    if (this.killed || this.frozen) return;
    this.frozen = true;
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** Chaos, like SIGCONT: held frames are handled, heartbeats resume at once. */
  thaw(): void {
    if (!this.frozen) return;
    this.frozen = false;
    // A stopped process cannot time a pong; whatever it waited for is judged afresh.
    this.pingOutstandingSince = undefined;
    for (const work of this.frozenBacklog.splice(0)) work();
    const socket = this.socket;
    if (this.connectionState === "ready" && socket !== undefined && this.heartbeatTimer === undefined) {
      // Like a resumed process whose timer is overdue: one tick now, then the usual rhythm.
      this.nextTickAt = Date.now();
      this.scheduleTick(socket);
    }
  }

  start(): void {
    if (this.connectionState !== "idle") return;
    this.connect();
  }

  /**
   * Announces the drain, waits until nothing is in flight (or the timeout passes), then closes
   * with 1000. Heartbeats keep flowing meanwhile so the gateway sees the work winding down.
   */
  drain(reason = "drain", timeoutMs = this.options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS_DEFAULT): Promise<void> {
    this.drainPromise ??= this.runDrain(reason, timeoutMs);
    return this.drainPromise;
  }

  /** Closes at once (in-flight requests are not awaited) and never reconnects. */
  close(): Promise<void> {
    return this.shutdown(CloseCode.normal, "closing");
  }

  // ---- lifecycle ------------------------------------------------------------------------

  private connect(): void {
    if (this.killed) return;
    if (this.frozen) {
      this.frozenBacklog.push(() => this.connect());
      return;
    }
    this.connectionState = "connecting";
    this.upgradeRefusal = undefined;
    this.lastGatewayError = undefined;
    this.lastSocketError = undefined;
    this.socketOpenedAt = undefined;
    const socket = new WebSocket(this.socketUrl, {
      headers: { authorization: `Bearer ${this.options.credential}` },
      maxPayload: MAX_GATEWAY_FRAME_BYTES,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      perMessageDeflate: false,
    });
    this.socket = socket;
    socket.on("unexpected-response", (_req, res) => this.onUpgradeRefused(socket, res));
    socket.on("open", () => this.guard("open", () => this.onOpen(socket)));
    socket.on("message", (data, isBinary) =>
      this.guard("message", () => {
        if (this.frozen) this.frozenBacklog.push(() => this.guard("message", () => this.onMessage(socket, data, isBinary)));
        else this.onMessage(socket, data, isBinary);
      }),
    );
    socket.on("close", (code, reason) => this.guard("close", () => this.onClose(socket, code, reason.toString())));
    socket.on("error", (error) => {
      // A close event always follows and reports it, in one line with the retry.
      if (socket === this.socket) this.lastSocketError = error.message;
    });
  }

  private onUpgradeRefused(socket: WebSocket, res: IncomingMessage): void {
    const status = res.statusCode ?? 0;
    readBodyText(res, MAX_REFUSAL_BODY_CHARS)
      .catch((error: unknown) => `(body unreadable: ${describeError(error)})`)
      .then((body) => {
        if (socket !== this.socket) return;
        this.upgradeRefusal = { status, body };
        socket.terminate(); // emits close, where the refusal is handled
      })
      .catch((error: unknown) => this.logger.error(`handling refused upgrade failed: ${describeError(error)}`));
  }

  private onOpen(socket: WebSocket): void {
    if (socket !== this.socket) return;
    this.socketOpenedAt = Date.now();
    this.connectionState = "awaiting-welcome";
    socket.send(JSON.stringify(this.hello));
    this.welcomeTimer = setTimeout(() => {
      this.logger.warn(`no welcome within ${WELCOME_TIMEOUT_MS} ms after hello; reconnecting`);
      socket.terminate();
    }, WELCOME_TIMEOUT_MS);
  }

  private onMessage(socket: WebSocket, data: RawData, isBinary: boolean): void {
    if (socket !== this.socket) return;
    if (isBinary) {
      this.logger.warn("ignoring a binary frame from the gateway");
      return;
    }
    const text = rawDataToString(data);
    if (text === PONG_FRAME) {
      this.pingOutstandingSince = undefined;
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.logger.warn(`ignoring a non-JSON frame from the gateway: ${text.slice(0, 200)}`);
      return;
    }
    const parsed = GatewayMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.logger.warn(`ignoring an invalid gateway message (${issuesText(parsed.error, "message")}): ${text.slice(0, 200)}`);
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case "welcome":
        this.onWelcome(socket, message);
        return;
      case "error":
        // Usually followed by a close; kept so the close can be explained.
        this.lastGatewayError = message;
        this.logger.error(`gateway error ${message.code}: ${message.message}`);
        return;
      case "command":
        this.logger.info("the gateway asked for a drain");
        this.drain("requested by the gateway").catch((error: unknown) =>
          this.logger.error(`drain failed: ${describeError(error)}`),
        );
        return;
    }
  }

  private onWelcome(socket: WebSocket, welcome: Welcome): void {
    if (this.connectionState !== "awaiting-welcome") {
      this.logger.warn("ignoring a repeated welcome");
      return;
    }
    clearTimeout(this.welcomeTimer);
    if (welcome.node !== this.nodeId) {
      this.logger.warn(`welcome names node ${welcome.node}, expected ${this.nodeId}`);
    }
    this.welcomedRegion = welcome.region;
    // The gateway has the final word on the interval, within the protocol's bounds.
    this.heartbeatMs = Math.min(HEARTBEAT_MS_MAX, Math.max(HEARTBEAT_MS_MIN, welcome.heartbeatMs));
    this.connectionState = "ready";
    this.logger.info(`connected to ${this.options.gatewayUrl} as ${welcome.region}`);
    this.emit("connected", welcome);

    this.lastHeartbeat = undefined;
    this.pingOutstandingSince = undefined;
    if (!this.chaosDrops()) this.sendHeartbeat(socket, this.options.load.snapshot());
    this.nextTickAt = Date.now() + this.heartbeatMs;
    this.scheduleTick(socket);
  }

  /** Arms the next heartbeat tick at its nominal time, moved by the jitter if any. */
  private scheduleTick(socket: WebSocket): void {
    clearTimeout(this.heartbeatTimer);
    const offset = this.jitterMs > 0 ? (this.random() * 2 - 1) * this.jitterMs : 0;
    const delay = Math.max(0, this.nextTickAt + offset - Date.now());
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = undefined;
      this.nextTickAt += this.heartbeatMs;
      // Far behind (event loop stalled): realign instead of firing a burst.
      if (this.nextTickAt < Date.now()) this.nextTickAt = Date.now() + this.heartbeatMs;
      this.guard("heartbeat", () => this.onHeartbeatTick(socket));
      if (socket === this.socket && !this.frozen && !this.stopping && this.connectionState === "ready") this.scheduleTick(socket);
    }, delay);
  }

  /** Chaos: whether this ping/heartbeat is lost. */
  private chaosDrops(): boolean {
    return this.lossRate > 0 && this.random() < this.lossRate;
  }

  private onHeartbeatTick(socket: WebSocket): void {
    if (socket !== this.socket || socket.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    const pongTimeoutMs = Math.max(3 * this.heartbeatMs, 3_000);
    if (this.pingOutstandingSince !== undefined && now - this.pingOutstandingSince > pongTimeoutMs) {
      this.logger.warn(`no pong for ${now - this.pingOutstandingSince} ms; reconnecting`);
      socket.terminate();
      return;
    }
    if (this.frozen) return;
    this.intervalsSinceHeartbeat++;
    const current = this.options.load.snapshot();
    // A lost heartbeat leaves lastHeartbeat alone, so the change is sent again next time.
    if (this.chaosDrops()) return;
    if (shouldSendHeartbeat(this.lastHeartbeat, current, this.intervalsSinceHeartbeat)) {
      this.sendHeartbeat(socket, current);
    } else {
      socket.send(PING_FRAME);
      this.pingOutstandingSince ??= now;
    }
  }

  private sendHeartbeat(socket: WebSocket, snapshot: LoadSnapshot): void {
    const heartbeat: Heartbeat = {
      type: "heartbeat",
      seq: this.heartbeatSeq++,
      load: snapshot.load,
      inFlight: snapshot.inFlight,
      free: snapshot.free,
      ...(snapshot.tier !== undefined ? { tier: snapshot.tier } : {}),
      ...(snapshot.users !== undefined ? { users: snapshot.users } : {}),
      ...(snapshot.congestion !== undefined ? { congestion: snapshot.congestion } : {}),
    };
    socket.send(JSON.stringify(heartbeat));
    this.lastHeartbeat = snapshot;
    this.intervalsSinceHeartbeat = 0;
  }

  private onClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.clearConnectionTimers();
    const livedMs = this.socketOpenedAt === undefined ? 0 : Date.now() - this.socketOpenedAt;
    const refusal = this.upgradeRefusal;
    const gatewayError = this.lastGatewayError;
    const neverOpened = this.socketOpenedAt === undefined;
    let explanation: string;
    if (refusal !== undefined) explanation = `upgrade refused with HTTP ${refusal.status}: ${refusal.body || "(empty body)"}`;
    else if (neverOpened) explanation = `could not connect: ${this.lastSocketError ?? `closed with ${code}`}`;
    else {
      const why = gatewayError ? ` (${gatewayError.code}: ${gatewayError.message})` : "";
      explanation = `disconnected: ${code} ${reason || "no reason"}${why}`;
    }

    // Every attempt that ends is reported, including ones that never opened.
    this.emit("disconnected", code, refusal ? `HTTP ${refusal.status}` : reason);
    if (this.stopping) {
      this.connectionState = "closed";
      for (const resolve of this.closeWaiters.splice(0)) resolve();
      return;
    }
    this.connectionState = "waiting";

    if (refusal !== undefined && FATAL_UPGRADE_STATUSES.has(refusal.status)) {
      this.fail(new Error(`node ${this.nodeId}: gateway refused the credential, ${explanation}`));
      return;
    }
    if (FATAL_CLOSE_CODES.has(code)) {
      this.fail(new Error(`node ${this.nodeId}: gateway closed the connection with ${code}: ${explanation}`));
      return;
    }
    if (this.draining) {
      // Reconnecting would announce the node as healthy again; the drain finishes offline.
      this.connectionState = "closed";
      this.logger.warn(`${explanation}; not reconnecting while draining`);
      return;
    }
    if (livedMs > STABLE_CONNECTION_MS) this.failedAttempts = 0;
    const delayMs = backoffDelayMs(this.failedAttempts, this.random);
    this.failedAttempts++;
    // A lost connection or a first failure is news; repeated failed attempts while the gateway
    // stays away are routine (and a whole simulated fleet would flood the log).
    const line = `${explanation}; reconnecting in ${delayMs} ms (attempt ${this.failedAttempts})`;
    if (!neverOpened || this.failedAttempts === 1) this.logger.warn(line);
    else this.logger.info(line);
    this.emit("reconnecting", delayMs, this.failedAttempts);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.guard("reconnect", () => this.connect());
    }, delayMs);
  }

  private fail(error: Error): void {
    this.stopping = true;
    this.connectionState = "closed";
    this.clearAllTimers();
    this.logger.error(error.message);
    this.emit("fatal", error);
  }

  private async runDrain(reason: string, timeoutMs: number): Promise<void> {
    if (this.connectionState === "closed") return;
    this.draining = true;
    clearTimeout(this.reconnectTimer);
    const socket = this.socket;
    if (socket?.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "drain", reason: reason.slice(0, 200) }));
    } else if (socket?.readyState === WebSocket.CONNECTING) {
      socket.terminate(); // no point finishing a handshake only to leave
    }
    const inFlight = this.options.load.snapshot().inFlight;
    this.logger.info(`draining (${reason}), ${inFlight} request(s) in flight`);
    const idle = await this.options.load.whenIdle(timeoutMs);
    if (!idle) {
      const left = this.options.load.snapshot().inFlight;
      this.logger.warn(`drain timed out after ${timeoutMs} ms with ${left} request(s) in flight; closing anyway`);
    }
    await this.shutdown(CloseCode.normal, "drained");
    this.logger.info("drained");
    this.emit("drained");
  }

  private shutdown(code: number, reason: string): Promise<void> {
    this.stopping = true;
    this.clearAllTimers();
    const socket = this.socket;
    if (socket === undefined || this.connectionState === "closed") {
      this.connectionState = "closed";
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const forceTimer = setTimeout(() => socket.terminate(), CLOSE_TIMEOUT_MS);
      this.closeWaiters.push(() => {
        clearTimeout(forceTimer);
        resolve();
      });
      if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
      else socket.terminate();
    });
  }

  private clearConnectionTimers(): void {
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.welcomeTimer);
    this.heartbeatTimer = undefined;
    this.welcomeTimer = undefined;
  }

  private clearAllTimers(): void {
    this.clearConnectionTimers();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  /** Runs a socket/timer handler; a bug in one must not take down the process or the fleet. */
  private guard(what: string, handler: () => void): void {
    try {
      handler();
    } catch (error) {
      this.logger.error(`${what} handler failed: ${describeError(error)}`);
    }
  }
}

function rawDataToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}

/** Reads at most `maxChars` of a response body (the rest is discarded). */
function readBodyText(res: IncomingMessage, maxChars: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => resolve(text), 5_000);
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      if (text.length < maxChars) text += chunk.slice(0, maxChars - text.length);
    });
    res.once("end", () => {
      clearTimeout(timer);
      resolve(text.trim());
    });
    res.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
