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

/**
 * Closes that retrying cannot fix. 4409 counts: the agent holds one socket at a time, so a
 * 4409 on it means another process took over this node's identity (a flap's 4409 lands on
 * the server side of the already dead socket); two agents must not replace each other forever.
 */
const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCode.identityMismatch, CloseCode.unsupportedProtocol, CloseCode.replaced, CloseCode.revoked, CloseCode.endpointRefused]);
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

/** A scheduled callback's handle; calling it cancels the callback. */
export type Cancel = () => void;

/**
 * How the connection runs its timers and socket callbacks. Production runs them as they come
 * (`directRuntime`); a fault injector (see chaos.ts) can hold them, as a stopped process would,
 * move heartbeat ticks or lose their frames. The connection itself knows nothing of faults.
 */
export interface ConnectionRuntime {
  /** Calls `callback` after `ms`. */
  schedule(callback: () => void, ms: number): Cancel;
  /** Runs one socket callback (open, message, close). */
  deliver(callback: () => void): void;
  /** Offset, in ms, added to the nominal time of the next heartbeat tick. */
  tickOffsetMs(): number;
  /** Whether the ping or heartbeat about to be sent is lost on the way. */
  losesFrame(): boolean;
}

export const directRuntime: ConnectionRuntime = {
  schedule: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  },
  deliver: (callback) => callback(),
  tickOffsetMs: () => 0,
  losesFrame: () => false,
};

export interface NodeConnectionOptions {
  /** Gateway base URL, http(s) or ws(s). */
  gatewayUrl: string;
  credential: string;
  node: string;
  kind: NodeKind;
  gpu?: GpuHardware;
  capacity: number;
  /** GPU nodes: the models served, advertised in the hello. */
  models?: readonly string[];
  /** Base URL where the node serves client traffic (no trailing slash). */
  endpoint: string;
  heartbeatMs?: number;
  load: LoadSource;
  logger?: Logger;
  drainTimeoutMs?: number;
  /** Injected for deterministic tests (backoff jitter). */
  random?: () => number;
  /** Timers and socket callbacks; `directRuntime` unless a test or the simulator injects faults. */
  runtime?: ConnectionRuntime;
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

/** Heartbeat bookkeeping of one welcomed socket. */
interface Pulse {
  /** Nominal time of the next tick; the runtime's offset is applied around it, without drift. */
  nextTickAt: number;
  cancelTick: Cancel | undefined;
  lastHeartbeat: LoadSnapshot | undefined;
  intervalsSinceHeartbeat: number;
  /** When the oldest unanswered ping was sent; detects half-open sockets. */
  pingOutstandingSince: number | undefined;
}

/** What one connection attempt learnt before its socket closed, to explain the close. */
interface AttemptNotes {
  upgradeRefusal: { status: number; body: string } | undefined;
  gatewayError: GatewayError | undefined;
  socketError: string | undefined;
}

/**
 * The connection's whole lifecycle, one phase at a time; each phase holds exactly the data
 * that exists in it. Allowed moves are listed in TRANSITIONS.
 */
type Lifecycle =
  | { phase: "idle" }
  | { phase: "connecting"; socket: WebSocket; notes: AttemptNotes }
  | { phase: "awaiting-welcome"; socket: WebSocket; notes: AttemptNotes; openedAt: number; cancelWelcomeWait: Cancel }
  | { phase: "ready"; socket: WebSocket; notes: AttemptNotes; openedAt: number; pulse: Pulse }
  /** Backing off before the next attempt. */
  | { phase: "waiting"; cancelReconnect: Cancel }
  /** Drain announced: heartbeats go on (when welcomed) until in-flight work ends; never reconnects. */
  | { phase: "draining"; socket: WebSocket | undefined; notes: AttemptNotes; pulse: Pulse | undefined }
  /** Close frame sent (or socket cut); waiting for the socket's close event. */
  | { phase: "closing"; socket: WebSocket; notes: AttemptNotes; cancelForce: Cancel; waiters: Array<() => void> }
  | { phase: "closed" };

export type ConnectionState = Lifecycle["phase"];

const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  idle: ["connecting", "draining", "closed"],
  connecting: ["awaiting-welcome", "waiting", "draining", "closing", "closed"],
  "awaiting-welcome": ["ready", "waiting", "draining", "closing", "closed"],
  ready: ["waiting", "draining", "closing", "closed"],
  waiting: ["connecting", "draining", "closed"],
  draining: ["closing", "closed"],
  closing: ["closed"],
  closed: [],
};

/** One node's socket to the gateway: hello, heartbeats, reconnects, drain. */
export class NodeConnection extends EventEmitter<NodeConnectionEvents> {
  readonly nodeId: string;
  readonly socketUrl: string;
  private readonly options: NodeConnectionOptions;
  private readonly hello: Hello;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly runtime: ConnectionRuntime;

  private lifecycle: Lifecycle = { phase: "idle" };
  private failedAttempts = 0;
  private heartbeatMs: number;
  private heartbeatSeq = 0;
  private welcomedRegion: string | undefined;
  private drainPromise: Promise<void> | undefined;

  constructor(options: NodeConnectionOptions) {
    super();
    this.options = options;
    this.nodeId = options.node;
    this.logger = options.logger ?? silentLogger;
    this.random = options.random ?? Math.random;
    this.runtime = options.runtime ?? directRuntime;
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
      ...(options.models !== undefined && options.models.length > 0 ? { models: [...options.models] } : {}),
    });
    if (!hello.success) {
      throw new Error(`node ${options.node}: invalid hello (${issuesText(hello.error, "hello")})`);
    }
    this.hello = hello.data;
    this.heartbeatMs = this.hello.heartbeatMs;
  }

  get state(): ConnectionState {
    return this.lifecycle.phase;
  }

  /** Region the gateway placed the node in (from the last welcome). */
  get region(): string | undefined {
    return this.welcomedRegion;
  }

  get isDraining(): boolean {
    return this.lifecycle.phase === "draining";
  }

  start(): void {
    if (this.lifecycle.phase !== "idle") return;
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
    return this.shutdown("handshake", CloseCode.normal, "closing");
  }

  /** Cuts the socket without a closing handshake (the gateway sees 1006) and never reconnects. */
  terminate(): Promise<void> {
    return this.shutdown("cut", CloseCode.normal, "terminated");
  }

  // ---- lifecycle ------------------------------------------------------------------------

  /** The one place the phase changes: checks the move and releases what the old phase held. */
  private enter(next: Lifecycle): void {
    const previous = this.lifecycle;
    if (!TRANSITIONS[previous.phase].includes(next.phase)) {
      throw new Error(`node ${this.nodeId}: no transition from ${previous.phase} to ${next.phase}`);
    }
    switch (previous.phase) {
      case "awaiting-welcome":
        previous.cancelWelcomeWait();
        break;
      case "ready":
        if (!(next.phase === "draining" && next.pulse === previous.pulse)) previous.pulse.cancelTick?.();
        break;
      case "draining":
        previous.pulse?.cancelTick?.();
        break;
      case "waiting":
        previous.cancelReconnect();
        break;
      case "closing":
        previous.cancelForce();
        for (const resolve of previous.waiters.splice(0)) resolve();
        break;
      default:
        break;
    }
    this.lifecycle = next;
  }

  /** The socket of the current attempt, if any. */
  private currentSocket(): WebSocket | undefined {
    const current = this.lifecycle;
    return "socket" in current ? current.socket : undefined;
  }

  private currentNotes(): AttemptNotes | undefined {
    const current = this.lifecycle;
    return "notes" in current ? current.notes : undefined;
  }

  private connect(): void {
    const socket = new WebSocket(this.socketUrl, {
      headers: { authorization: `Bearer ${this.options.credential}` },
      maxPayload: MAX_GATEWAY_FRAME_BYTES,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      perMessageDeflate: false,
    });
    this.enter({ phase: "connecting", socket, notes: { upgradeRefusal: undefined, gatewayError: undefined, socketError: undefined } });
    const on = (what: string, handler: () => void): void => this.runtime.deliver(() => this.guard(what, handler));
    socket.on("unexpected-response", (_req, res) => this.onUpgradeRefused(socket, res));
    socket.on("open", () => on("open", () => this.onOpen(socket)));
    socket.on("message", (data, isBinary) => on("message", () => this.onMessage(socket, data, isBinary)));
    socket.on("close", (code, reason) => on("close", () => this.onClose(socket, code, reason.toString())));
    socket.on("error", (error) => {
      // A close event always follows and reports it, in one line with the retry.
      const notes = socket === this.currentSocket() ? this.currentNotes() : undefined;
      if (notes !== undefined) notes.socketError = error.message;
    });
  }

  private onUpgradeRefused(socket: WebSocket, res: IncomingMessage): void {
    const status = res.statusCode ?? 0;
    readBodyText(res, MAX_REFUSAL_BODY_CHARS)
      .catch((error: unknown) => `(body unreadable: ${describeError(error)})`)
      .then((body) => {
        const notes = socket === this.currentSocket() ? this.currentNotes() : undefined;
        if (notes === undefined) return;
        notes.upgradeRefusal = { status, body };
        socket.terminate(); // emits close, where the refusal is handled
      })
      .catch((error: unknown) => this.logger.error(`handling refused upgrade failed: ${describeError(error)}`));
  }

  private onOpen(socket: WebSocket): void {
    const current = this.lifecycle;
    if (current.phase !== "connecting" || current.socket !== socket) return;
    socket.send(JSON.stringify(this.hello));
    const cancelWelcomeWait = this.runtime.schedule(() => {
      this.logger.warn(`no welcome within ${WELCOME_TIMEOUT_MS} ms after hello; reconnecting`);
      socket.terminate();
    }, WELCOME_TIMEOUT_MS);
    this.enter({ phase: "awaiting-welcome", socket, notes: current.notes, openedAt: Date.now(), cancelWelcomeWait });
  }

  private onMessage(socket: WebSocket, data: RawData, isBinary: boolean): void {
    if (socket !== this.currentSocket()) return;
    if (isBinary) {
      this.logger.warn("ignoring a binary frame from the gateway");
      return;
    }
    const text = rawDataToString(data);
    if (text === PONG_FRAME) {
      const pulse = this.currentPulse();
      if (pulse !== undefined) pulse.pingOutstandingSince = undefined;
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
      case "error": {
        // Usually followed by a close; kept so the close can be explained.
        const notes = this.currentNotes();
        if (notes !== undefined) notes.gatewayError = message;
        this.logger.error(`gateway error ${message.code}: ${message.message}`);
        return;
      }
      case "command":
        this.logger.info("the gateway asked for a drain");
        this.drain("requested by the gateway").catch((error: unknown) =>
          this.logger.error(`drain failed: ${describeError(error)}`),
        );
        return;
    }
  }

  private currentPulse(): Pulse | undefined {
    const current = this.lifecycle;
    return current.phase === "ready" || current.phase === "draining" ? current.pulse : undefined;
  }

  private onWelcome(socket: WebSocket, welcome: Welcome): void {
    const current = this.lifecycle;
    if (current.phase !== "awaiting-welcome") {
      this.logger.warn(current.phase === "draining" ? "ignoring a welcome that came after the drain began" : "ignoring a repeated welcome");
      return;
    }
    if (welcome.node !== this.nodeId) {
      this.logger.warn(`welcome names node ${welcome.node}, expected ${this.nodeId}`);
    }
    this.welcomedRegion = welcome.region;
    // The gateway has the final word on the interval, within the protocol's bounds.
    this.heartbeatMs = Math.min(HEARTBEAT_MS_MAX, Math.max(HEARTBEAT_MS_MIN, welcome.heartbeatMs));
    const pulse: Pulse = {
      // The rhythm starts at a random point of the first interval: nodes that (re)connect
      // together, after a gateway deploy or a simulator start, would otherwise beat in step
      // and reach their hub as one burst every interval, forever. The one shorter first gap is
      // folded in by the gateway's detector like jitter.
      nextTickAt: Date.now() + this.heartbeatMs - Math.floor(this.random() * this.heartbeatMs),
      cancelTick: undefined,
      lastHeartbeat: undefined,
      intervalsSinceHeartbeat: 0,
      pingOutstandingSince: undefined,
    };
    this.enter({ phase: "ready", socket, notes: current.notes, openedAt: current.openedAt, pulse });
    this.logger.info(`connected to ${this.options.gatewayUrl} as ${welcome.region}`);
    this.emit("connected", welcome);

    if (!this.runtime.losesFrame()) this.sendHeartbeat(socket, pulse, this.options.load.snapshot());
    this.scheduleTick(socket, pulse);
  }

  /** Arms the next heartbeat tick at its nominal time, moved by the runtime's offset if any. */
  private scheduleTick(socket: WebSocket, pulse: Pulse): void {
    pulse.cancelTick?.();
    const delay = Math.max(0, pulse.nextTickAt + this.runtime.tickOffsetMs() - Date.now());
    pulse.cancelTick = this.runtime.schedule(() => {
      pulse.cancelTick = undefined;
      if (pulse !== this.currentPulse()) return;
      pulse.nextTickAt += this.heartbeatMs;
      // Far behind (event loop stalled, or a held tick): realign instead of firing a burst.
      if (pulse.nextTickAt < Date.now()) pulse.nextTickAt = Date.now() + this.heartbeatMs;
      this.guard("heartbeat", () => this.onHeartbeatTick(socket, pulse));
      if (pulse === this.currentPulse()) this.scheduleTick(socket, pulse);
    }, delay);
  }

  private onHeartbeatTick(socket: WebSocket, pulse: Pulse): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    const pongTimeoutMs = Math.max(3 * this.heartbeatMs, 3_000);
    if (pulse.pingOutstandingSince !== undefined && now - pulse.pingOutstandingSince > pongTimeoutMs) {
      this.logger.warn(`no pong for ${now - pulse.pingOutstandingSince} ms; reconnecting`);
      socket.terminate();
      return;
    }
    pulse.intervalsSinceHeartbeat++;
    const current = this.options.load.snapshot();
    // A lost heartbeat leaves lastHeartbeat alone, so the change is sent again next time.
    if (this.runtime.losesFrame()) return;
    if (shouldSendHeartbeat(pulse.lastHeartbeat, current, pulse.intervalsSinceHeartbeat)) {
      this.sendHeartbeat(socket, pulse, current);
    } else {
      socket.send(PING_FRAME);
      pulse.pingOutstandingSince ??= now;
    }
  }

  private sendHeartbeat(socket: WebSocket, pulse: Pulse, snapshot: LoadSnapshot): void {
    const heartbeat: Heartbeat = {
      type: "heartbeat",
      seq: this.heartbeatSeq++,
      load: snapshot.load,
      inFlight: snapshot.inFlight,
      free: snapshot.free,
      ...(snapshot.tier !== undefined ? { tier: snapshot.tier } : {}),
      ...(snapshot.users !== undefined ? { users: snapshot.users } : {}),
      ...(snapshot.congestion !== undefined ? { congestion: snapshot.congestion } : {}),
      ...(this.options.load.gpuSignals?.() ?? {}),
    };
    socket.send(JSON.stringify(heartbeat));
    pulse.lastHeartbeat = snapshot;
    pulse.intervalsSinceHeartbeat = 0;
  }

  private onClose(socket: WebSocket, code: number, reason: string): void {
    const current = this.lifecycle;
    if (!("socket" in current) || current.socket !== socket) return;
    const { notes } = current;
    const openedAt = current.phase === "awaiting-welcome" || current.phase === "ready" ? current.openedAt : undefined;
    const neverOpened = current.phase === "connecting";
    const refusal = notes.upgradeRefusal;
    let explanation: string;
    if (refusal !== undefined) explanation = `upgrade refused with HTTP ${refusal.status}: ${refusal.body || "(empty body)"}`;
    else if (neverOpened) explanation = `could not connect: ${notes.socketError ?? `closed with ${code}`}`;
    else {
      const why = notes.gatewayError ? ` (${notes.gatewayError.code}: ${notes.gatewayError.message})` : "";
      explanation = `disconnected: ${code} ${reason || "no reason"}${why}`;
    }

    // Every attempt that ends is reported, including ones that never opened.
    this.emit("disconnected", code, refusal ? `HTTP ${refusal.status}` : reason);
    if (current.phase === "closing") {
      this.enter({ phase: "closed" });
      return;
    }
    if (refusal !== undefined && FATAL_UPGRADE_STATUSES.has(refusal.status)) {
      this.fail(new Error(`node ${this.nodeId}: gateway refused the credential, ${explanation}`));
      return;
    }
    if (FATAL_CLOSE_CODES.has(code)) {
      this.fail(new Error(`node ${this.nodeId}: gateway closed the connection with ${code}: ${explanation}`));
      return;
    }
    if (current.phase === "draining") {
      // Reconnecting would announce the node as healthy again; the drain finishes offline.
      this.enter({ phase: "closed" });
      this.logger.warn(`${explanation}; not reconnecting while draining`);
      return;
    }
    const livedMs = openedAt === undefined ? 0 : Date.now() - openedAt;
    if (livedMs > STABLE_CONNECTION_MS) this.failedAttempts = 0;
    const delayMs = backoffDelayMs(this.failedAttempts, this.random);
    this.failedAttempts++;
    // A lost connection or a first failure is news; repeated failed attempts while the gateway
    // stays away are routine (and a whole simulated fleet would flood the log).
    const line = `${explanation}; reconnecting in ${delayMs} ms (attempt ${this.failedAttempts})`;
    if (!neverOpened || this.failedAttempts === 1) this.logger.warn(line);
    else this.logger.info(line);
    const cancelReconnect = this.runtime.schedule(() => this.guard("reconnect", () => this.connect()), delayMs);
    this.enter({ phase: "waiting", cancelReconnect });
    this.emit("reconnecting", delayMs, this.failedAttempts);
  }

  private fail(error: Error): void {
    this.enter({ phase: "closed" });
    this.logger.error(error.message);
    this.emit("fatal", error);
  }

  private async runDrain(reason: string, timeoutMs: number): Promise<void> {
    const current = this.lifecycle;
    switch (current.phase) {
      case "closed":
      case "closing":
        return;
      case "idle":
      case "waiting":
        this.enter({ phase: "draining", socket: undefined, notes: emptyNotes(), pulse: undefined });
        break;
      case "connecting":
        // No point finishing a handshake only to leave.
        this.enter({ phase: "draining", socket: current.socket, notes: current.notes, pulse: undefined });
        current.socket.terminate();
        break;
      case "awaiting-welcome":
      case "ready":
        this.enter({ phase: "draining", socket: current.socket, notes: current.notes, pulse: current.phase === "ready" ? current.pulse : undefined });
        current.socket.send(JSON.stringify({ type: "drain", reason: reason.slice(0, 200) }));
        break;
      case "draining":
        break;
    }
    const inFlight = this.options.load.snapshot().inFlight;
    this.logger.info(`draining (${reason}), ${inFlight} request(s) in flight`);
    const idle = await this.options.load.whenIdle(timeoutMs);
    if (!idle) {
      const left = this.options.load.snapshot().inFlight;
      this.logger.warn(`drain timed out after ${timeoutMs} ms with ${left} request(s) in flight; closing anyway`);
    }
    await this.shutdown("handshake", CloseCode.normal, "drained");
    this.logger.info("drained");
    this.emit("drained");
  }

  private shutdown(how: "handshake" | "cut", code: number, reason: string): Promise<void> {
    const current = this.lifecycle;
    if (current.phase === "closed") return Promise.resolve();
    if (current.phase === "closing") {
      if (how === "cut") current.socket.terminate();
      return new Promise((resolve) => current.waiters.push(resolve));
    }
    const socket = this.currentSocket();
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) {
      this.enter({ phase: "closed" });
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const cancelForce = this.runtime.schedule(() => socket.terminate(), CLOSE_TIMEOUT_MS);
      this.enter({ phase: "closing", socket, notes: this.currentNotes() ?? emptyNotes(), cancelForce, waiters: [resolve] });
      if (how === "handshake" && socket.readyState === WebSocket.OPEN) socket.close(code, reason);
      else socket.terminate();
    });
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

function emptyNotes(): AttemptNotes {
  return { upgradeRefusal: undefined, gatewayError: undefined, socketError: undefined };
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
