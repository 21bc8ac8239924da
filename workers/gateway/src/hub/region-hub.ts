import { DurableObject } from "cloudflare:workers";
import {
  CloseCode,
  DEFAULT_HOTSPOT_MBPS,
  HELLO_TIMEOUT_MS,
  MAX_NODE_FRAME_BYTES,
  NodeMessageSchema,
  PING_FRAME,
  PONG_FRAME,
  PROTOCOL_VERSION,
  endpointProblem,
  hubName,
  identityMismatch,
  parseHubName,
  tierForMbps,
  type GatewayMessage,
  type Heartbeat,
  type Hello,
  type NodeHealth,
  type NodeRecord,
} from "@meridian/protocol";
import { CLOCK_TIMING, FLAP_WINDOW_MS, newArrivalStats, observeArrival, stepLiveness } from "@meridian/routing";
import { credentialKeys, secretForCredential } from "../credentials";
import { livenessClock } from "../durable";
import { endpointRules } from "../endpoints";
import { formatIssue } from "../errors";
import { requestKeyFor } from "../request-keys";
import { readTicket } from "./connect-ticket";
import { DirectoryPush } from "./directory-push";
import { Membership } from "./membership";
import { NodeSocket, type NodeSocketState } from "./node-socket";

/**
 * When the hub sweeps on its own alarm (the liveness clock cannot be reached), sweeps are at
 * least this far apart, so its alarm writes stay bounded whatever its node count.
 */
const SWEEP_TICK_MS = CLOCK_TIMING.tickMs;
/** A load (or congestion) change smaller than this is not worth a Directory update. */
const LOAD_STEP = 0.05;
/** Connects of one node id allowed per window; past it the socket is closed with 4429. */
const CONNECTS_PER_WINDOW = 10;
const CONNECT_WINDOW_MS = 10_000;

/**
 * One per cell of a region (named `<region>` for cell 0, `<region>/<k>` for the others; the
 * NodeRegistry assigns each node its cell): terminates the WebSockets of that cell's nodes
 * (hibernation API), tracks liveness cheaply and tells the Directory about joins, leaves,
 * health flips and load steps. Storage is written only on membership changes, plus one
 * distant backstop alarm: the liveness sweeps are woken by the LivenessClock.
 */
export class RegionHub extends DurableObject<Env> {
  /** This object's name, as the clock and the Directory address it. */
  private readonly name: string;
  private readonly region: string;
  private readonly cell: number;
  /** When the liveness clock last woke this hub (memory only: after an eviction the backstop asks again). */
  private lastClockWakeAt = 0;
  private readonly members: Membership;
  private readonly outbox: DirectoryPush;
  /** Monotonic across restarts (clock-based), so the Directory can order updates. */
  private seq = Date.now() * 1000;
  /**
   * When nodes went down or left, so one that comes back on a new connection (a frozen agent
   * reconnects when it resumes) still gets slow start. Memory only: after an eviction a
   * returning node simply starts at full weight.
   */
  private readonly outSince = new Map<string, number>();
  /** Recent connect times per node id (memory only: the limit is about storms, not history). */
  private readonly connects = new Map<string, number[]>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const name = ctx.id.name;
    const cell = name === undefined ? null : parseHubName(name);
    if (name === undefined || cell === null) throw new Error("RegionHub must be addressed by a hub cell name (regionHub in durable.ts)");
    this.name = name;
    this.region = cell.region;
    this.cell = cell.cell;
    this.members = new Membership(ctx.storage.sql);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS revoked (jti TEXT PRIMARY KEY, at INTEGER NOT NULL)");
    this.outbox = new DirectoryPush(env, name);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    // Nodes recorded as members but with no socket left (the hub was restarted or
    // redeployed) are gone: tell the Directory so nobody routes to them.
    const live = new Set(this.sockets().map((s) => s.state?.claims.id));
    for (const member of this.members.list()) if (!live.has(member.id)) this.leave(member.id);
  }

  /** The live nodes this hub holds sockets for (the Directory asks after its own restart). */
  liveRecords(): NodeRecord[] {
    const records: NodeRecord[] = [];
    for (const socket of this.sockets()) {
      const state = socket.state;
      if (state?.record && !state.replaced) records.push({ ...state.record, seq: this.seq++ });
    }
    return records;
  }

  /**
   * Revocation (or a move, or a re-enrollment): the credential is dead in this hub from now
   * on, also for a connect already on its way here, and the node's socket on it closes.
   * True when a socket was open.
   */
  revoke(nodeId: string, credentialId: string, reason: string): boolean {
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO revoked (jti, at) VALUES (?, ?)", credentialId, Date.now());
    let closed = false;
    for (const socket of this.sockets(nodeId)) {
      if (socket.state?.claims.jti !== credentialId) continue;
      this.closeWith(socket, CloseCode.revoked, reason);
      closed = true;
    }
    return closed;
  }

  /** A node's state as this hub sees it (for the operator's self-view), or null when not connected. */
  nodeView(nodeId: string): { record: NodeRecord; detector: { heartbeatMs: number; suspectAfterMs: number; downAfterMs: number } | null } | null {
    for (const socket of this.sockets(nodeId)) {
      const state = socket.state;
      if (state?.record && !state.replaced) {
        const a = state.arrivals;
        return { record: state.record, detector: a === null ? null : { heartbeatMs: state.heartbeatMs, suspectAfterMs: Math.round(a.suspectAfterMs), downAfterMs: Math.round(a.downAfterMs) } };
      }
    }
    return null;
  }

  override async fetch(request: Request): Promise<Response> {
    const ticket = readTicket(request.headers);
    if (ticket === null || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("internal: expected a verified node upgrade", { status: 400 });
    }
    // A socket for another region or cell would make this hub report a node it does not own.
    if (ticket.claims.region !== this.region || ticket.cell !== this.cell) {
      return new Response(`internal: node ${ticket.claims.id} belongs to hub ${hubName(ticket.claims.region, ticket.cell)}, not ${this.name}`, { status: 400 });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const now = Date.now();
    const id = ticket.claims.id;
    if (this.ctx.storage.sql.exec("SELECT 1 FROM revoked WHERE jti = ?", ticket.claims.jti).toArray().length > 0) {
      return Response.json({ error: { code: "credential_revoked", message: "this credential was revoked" } }, { status: 401 });
    }
    if (!this.admitConnect(id, now)) {
      // Refused before the hub keeps anything: a storm of one credential costs O(1) per connect.
      server.accept();
      server.send(JSON.stringify({ type: "error", code: `close_${CloseCode.rateLimited}`, message: "too many connects" } satisfies GatewayMessage));
      server.close(CloseCode.rateLimited, `more than ${CONNECTS_PER_WINDOW} connects in ${CONNECT_WINDOW_MS / 1000} s`);
      return new Response(null, { status: 101, webSocket: client });
    }
    const secret = secretForCredential(await credentialKeys(this.env), ticket.claims.jti);
    if (secret === undefined) return new Response("internal: the credential's key is gone", { status: 503 });
    // Derived before the socket is accepted, so the hello handler has no await before it
    // decides which connection of a node is the live one.
    const requestKey = await requestKeyFor(secret, id, ticket.claims.jti);
    this.ctx.acceptWebSocket(server, [id]);
    new NodeSocket(server).setState({
      v: 2,
      claims: ticket.claims,
      requestKey,
      acceptedAt: now,
      lastFrameAt: now,
      record: null,
      heartbeatMs: 0,
      pushedLoad: 0,
      goodChecks: 0,
      recentDowns: [],
      arrivals: null,
      replaced: false,
      gatewayHost: ticket.gatewayHost,
      ...(ticket.geoFlag ? { geoFlag: ticket.geoFlag } : {}),
    });
    await this.sweepBy(now + HELLO_TIMEOUT_MS);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const socket = new NodeSocket(ws);
    const state = socket.state;
    if (state === null) return this.closeWith(socket, CloseCode.internalError, "lost connection state");
    // A replaced socket is already closing: nothing it says counts any more.
    if (state.replaced) return;
    try {
      const size = frameBytes(message);
      if (size > MAX_NODE_FRAME_BYTES) return this.closeWith(socket, CloseCode.frameTooLarge, `frame of ${size} bytes exceeds ${MAX_NODE_FRAME_BYTES}`);
      if (typeof message !== "string") return this.closeWith(socket, CloseCode.invalidMessage, "binary frames are not part of the protocol");
      state.lastFrameAt = Date.now();
      this.observeFrames(socket, state, state.lastFrameAt);
      // A ping normally gets the auto-response; one that reaches us still counts as liveness.
      if (message === PING_FRAME) return socket.setState(state);
      let json: unknown;
      try {
        json = JSON.parse(message);
      } catch {
        return this.closeWith(socket, CloseCode.invalidMessage, "frame is not JSON");
      }
      const parsed = NodeMessageSchema.safeParse(json);
      if (!parsed.success) return this.closeWith(socket, CloseCode.invalidMessage, `invalid message: ${formatIssue(parsed.error, "type")}`);
      const msg = parsed.data;
      if (msg.type === "hello") return this.onHello(socket, state, msg);
      if (state.record === null) return this.closeWith(socket, CloseCode.invalidMessage, "the first message must be hello");
      if (msg.type === "heartbeat") {
        this.outbox.countHeartbeat();
        return this.onHeartbeat(socket, state, state.record, msg);
      }
      this.setHealth(state.record, "draining", `drain${msg.reason ? `: ${msg.reason}` : ""}`);
      socket.setState(state);
      this.push(state.record);
    } catch (err) {
      console.error(JSON.stringify({ at: "hub.message", node: state.claims.id, error: String(err) }));
      this.closeWith(socket, CloseCode.internalError, "internal error");
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.onSocketEnd(new NodeSocket(ws), `closed ${code}${reason ? ` ${reason}` : ""}`);
    try {
      ws.close(code === 1005 || code === 1006 ? CloseCode.normal : code, "bye");
    } catch {
      // Already closed: nothing to answer.
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.onSocketEnd(new NodeSocket(ws), `error ${String(error)}`);
  }

  /**
   * The liveness clock's wake-up (see hub/liveness-clock.ts): one sweep. Answers when the hub
   * next needs one, or null when it holds no socket (the clock then waits for a join).
   */
  async sweepNow(): Promise<number | null> {
    const now = Date.now();
    this.lastClockWakeAt = now;
    const next = await this.sweep(now);
    return Number.isFinite(next) ? next : null;
  }

  /**
   * The hub's own alarm. While the clock wakes the hub it is only a distant backstop, re-armed
   * far out; when the clock has gone quiet the hub signs up again, and if the clock cannot be
   * reached the alarm carries the sweeps itself, one tick apart. None while no socket is held.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const next = await this.sweep(now);
    if (!Number.isFinite(next)) return;
    const clockAwake = now - this.lastClockWakeAt < CLOCK_TIMING.backstopMs || (await this.signUp(next));
    await this.ctx.storage.setAlarm(clockAwake ? now + CLOCK_TIMING.backstopMs : Math.max(next, now + SWEEP_TICK_MS));
  }

  /**
   * Liveness sweep: silent nodes go down, resumed ones come back, stuck hellos are closed.
   * Returns the earliest moment anything could change next (a node's deadline), or infinity
   * when the hub holds no socket.
   */
  private async sweep(now: number): Promise<number> {
    let next = Number.POSITIVE_INFINITY;
    for (const socket of this.sockets()) {
      const state = socket.state;
      if (state === null || state.replaced) continue;
      try {
        next = Math.min(next, this.checkLiveness(socket, state, now));
      } catch (err) {
        console.error(JSON.stringify({ at: "hub.sweep", node: state.claims.id, error: String(err) }));
      }
    }
    await this.outbox.reportHeartbeats(this.region, now);
    return next;
  }

  /** Applies one socket's liveness rules; returns when it next needs looking at. */
  private checkLiveness(socket: NodeSocket, state: NodeSocketState, now: number): number {
    if (state.record === null) {
      const deadline = state.acceptedAt + HELLO_TIMEOUT_MS;
      if (now < deadline) return deadline;
      this.closeWith(socket, CloseCode.helloTimeout, `no hello within ${HELLO_TIMEOUT_MS} ms`);
      return Number.POSITIVE_INFINITY;
    }
    const observed = this.observeFrames(socket, state);
    const arrivals = state.arrivals ?? newArrivalStats(state.heartbeatMs, state.lastFrameAt);
    const record = state.record;
    const limits = { heartbeatMs: state.heartbeatMs, suspectAfterMs: arrivals.suspectAfterMs, downAfterMs: arrivals.downAfterMs };
    const step = stepLiveness({ health: record.health, reason: record.healthReason, goodChecks: state.goodChecks, recentDowns: state.recentDowns }, now - arrivals.lastArrivalAt, limits, now);
    if (step.changed) {
      state.goodChecks = step.goodChecks;
      state.recentDowns = step.recentDowns;
      if (step.health !== record.health) {
        // Back from down: routing ramps it in (slow start) instead of handing it a herd at once.
        if (record.health === "down" && step.health === "healthy") record.returnedAt = now;
        if (step.health === "down") this.outSince.set(record.id, now);
        this.setHealth(record, step.health, step.reason);
        this.push(record);
        console.log(JSON.stringify({ at: "hub.health", node: record.id, region: record.region, health: step.health, reason: step.reason }));
      } else {
        record.healthReason = step.reason;
      }
      socket.setState(state);
    } else if (observed) socket.setState(state);
    return step.nextCheckAt;
  }

  /**
   * Feeds the failure detector the frames that arrived since it last looked: the latest
   * auto-answered ping (the runtime keeps only its time) and, when given, a frame that woke
   * us. Sweeps come at least every suspect deadline, under two gaps, so they rarely skip a
   * ping; when one does, the gap looks like a lost frame, which the detector folds out.
   * Returns whether the statistics changed (the caller saves the state).
   */
  private observeFrames(socket: NodeSocket, state: NodeSocketState, wokenAt?: number): boolean {
    if (state.arrivals === null) return false;
    const before = state.arrivals;
    const pingAt = this.ctx.getWebSocketAutoResponseTimestamp(socket.ws)?.getTime();
    if (pingAt !== undefined) state.arrivals = observeArrival(state.arrivals, pingAt, state.heartbeatMs);
    if (wokenAt !== undefined) state.arrivals = observeArrival(state.arrivals, wokenAt, state.heartbeatMs);
    return state.arrivals !== before;
  }

  // ---- message handlers ----------------------------------------------------------------

  /** Synchronous up to the welcome: two hellos of one node cannot interleave. */
  private onHello(socket: NodeSocket, state: NodeSocketState, hello: Hello): void {
    const claims = state.claims;
    if (state.record !== null) return this.closeWith(socket, CloseCode.invalidMessage, "hello was already received");
    if (hello.protocol !== PROTOCOL_VERSION) return this.closeWith(socket, CloseCode.unsupportedProtocol, `protocol ${hello.protocol} is not supported; speak ${PROTOCOL_VERSION}`);
    const mismatch = identityMismatch(claims, hello);
    if (mismatch !== null) return this.closeWith(socket, CloseCode.identityMismatch, mismatch);
    const endpointRefused = endpointProblem(hello.endpoint, endpointRules(this.env, state.gatewayHost));
    if (endpointRefused !== null) return this.closeWith(socket, CloseCode.endpointRefused, `endpoint ${hello.endpoint} refused: ${endpointRefused}`);
    // One live connection per node: the newest hello wins. Each older socket is marked and
    // closed once, so a storm of N hellos costs O(N) closes, not O(N^2).
    for (const other of this.sockets(claims.id)) {
      if (other.ws === socket.ws) continue;
      const otherState = other.state;
      if (otherState === null || otherState.replaced) continue;
      otherState.replaced = true;
      other.setState(otherState);
      this.closeWith(other, CloseCode.replaced, "replaced by a newer connection of the same node");
    }
    const now = Date.now();
    const outAt = this.outSince.get(claims.id);
    this.outSince.delete(claims.id);
    state.heartbeatMs = hello.heartbeatMs;
    state.arrivals = newArrivalStats(hello.heartbeatMs, now);
    state.record = {
      id: claims.id,
      kind: claims.kind,
      region: claims.region,
      credentialId: claims.jti,
      ...(claims.gpu ? { gpu: claims.gpu } : {}),
      ...(claims.partner ? { partner: claims.partner, congestion: 0 } : {}),
      ...(claims.kind === "hotspot" ? { maxMbps: claims.maxMbps ?? DEFAULT_HOTSPOT_MBPS } : {}),
      ...(state.geoFlag ? { geoFlag: state.geoFlag } : {}),
      ...(claims.kind === "gpu" ? { models: boundedModels(hello.models ?? [], claims.models) } : {}),
      ...(claims.pricePerGpuHour !== undefined ? { pricePerGpuHour: claims.pricePerGpuHour } : {}),
      capacity: hello.capacity,
      endpoint: hello.endpoint.replace(/\/+$/, ""),
      health: "healthy",
      healthReason: "hello",
      healthSince: now,
      load: 0,
      inFlight: 0,
      free: hello.capacity,
      connectedAt: now,
      seq: 0,
      // Back within the flap window after being down or gone: ramp it in like a recovery.
      ...(outAt !== undefined && now - outAt < FLAP_WINDOW_MS ? { returnedAt: now } : {}),
    };
    socket.setState(state);
    this.members.join(claims.id, claims.region, now);
    this.send(socket, { type: "welcome", node: claims.id, region: claims.region, heartbeatMs: hello.heartbeatMs, ping: PING_FRAME, requestKey: state.requestKey });
    this.push(state.record);
    void this.sweepBy(now + state.arrivals.suspectAfterMs + 1).catch((err: unknown) => console.error(JSON.stringify({ at: "hub.alarm", error: String(err) })));
    console.log(JSON.stringify({ at: "hub.join", node: claims.id, region: claims.region, endpoint: state.record.endpoint }));
    if (state.geoFlag) console.warn(JSON.stringify({ at: "hub.geo_flag", node: claims.id, region: claims.region, colo: state.geoFlag.colo, km: state.geoFlag.km }));
  }

  private onHeartbeat(socket: NodeSocket, state: NodeSocketState, record: NodeRecord, beat: Heartbeat): void {
    const free = Math.min(beat.free, record.capacity);
    // A hotspot cannot claim a better tier than its enrolled backhaul supports.
    const tier = record.kind === "hotspot" && beat.tier !== undefined ? Math.min(beat.tier, tierForMbps(record.maxMbps ?? DEFAULT_HOTSPOT_MBPS)) : undefined;
    const congestion = record.kind === "carrier" ? beat.congestion : undefined;
    const gpu = record.kind === "gpu";
    const models = gpu && beat.models !== undefined ? boundedModels(beat.models, state.claims.models) : undefined;
    const modelsChanged = models !== undefined && models.join("\n") !== (record.models ?? []).join("\n");
    const queue = gpu ? beat.queue : undefined;
    const tokensPerSecond = gpu ? beat.tokensPerSecond : undefined;
    const stepped =
      modelsChanged ||
      (queue !== undefined && queueStepped(record.queue ?? 0, queue)) ||
      (tokensPerSecond !== undefined && rateStepped(record.tokensPerSecond ?? 0, tokensPerSecond)) ||
      Math.abs(beat.load - state.pushedLoad) >= LOAD_STEP - 1e-9 ||
      (free === 0) !== (record.free === 0) ||
      record.health === "suspect" ||
      (tier !== undefined && tier !== record.tier) ||
      (congestion !== undefined && Math.abs(congestion - (record.congestion ?? 0)) >= LOAD_STEP - 1e-9);
    record.load = beat.load;
    record.inFlight = beat.inFlight;
    record.free = free;
    if (models !== undefined) record.models = models;
    // Queue and rate move in steps like load: the Directory hears of real changes only.
    if (queue !== undefined && (stepped || record.queue === undefined)) record.queue = queue;
    if (tokensPerSecond !== undefined && (stepped || record.tokensPerSecond === undefined)) record.tokensPerSecond = tokensPerSecond;
    if (tier !== undefined) record.tier = tier;
    if (beat.users !== undefined && record.kind === "hotspot") record.users = beat.users;
    // Congestion moves in steps like load, so the Directory is not told about every wobble.
    if (congestion !== undefined && (stepped || record.congestion === undefined)) record.congestion = congestion;
    if (stepped) {
      state.pushedLoad = beat.load;
      this.push(record);
    }
    socket.setState(state);
  }

  private onSocketEnd(socket: NodeSocket, why: string): void {
    const state = socket.state;
    // A replaced socket's node lives on in the newer connection.
    if (state === null || state.record === null || state.replaced) return;
    const stillConnected = this.sockets(state.claims.id).some((other) => other.ws !== socket.ws && other.state?.record != null && !other.state.replaced);
    if (stillConnected) return;
    console.log(JSON.stringify({ at: "hub.leave", node: state.claims.id, region: state.claims.region, why }));
    this.leave(state.claims.id);
  }

  // ---- helpers -------------------------------------------------------------------------

  private sockets(nodeId?: string): NodeSocket[] {
    return this.ctx.getWebSockets(nodeId).map((ws) => new NodeSocket(ws));
  }

  /** Counts a connect of this node id; false past the per-window limit. */
  private admitConnect(id: string, now: number): boolean {
    const recent = (this.connects.get(id) ?? []).filter((t) => now - t < CONNECT_WINDOW_MS);
    if (recent.length >= CONNECTS_PER_WINDOW) {
      this.connects.set(id, recent);
      return false;
    }
    recent.push(now);
    this.connects.set(id, recent);
    return true;
  }

  private leave(id: string): void {
    const now = Date.now();
    this.outSince.set(id, now);
    for (const [node, at] of this.outSince) if (now - at >= FLAP_WINDOW_MS) this.outSince.delete(node);
    this.members.leave(id);
    this.outbox.queue({ id, region: this.region, gone: true, seq: this.seq++ });
  }

  private setHealth(record: NodeRecord, health: NodeHealth, reason: string): void {
    record.health = health;
    record.healthReason = reason;
    record.healthSince = Date.now();
  }

  private push(record: NodeRecord): void {
    this.outbox.queue({ ...record, seq: this.seq++ });
  }

  /**
   * Makes sure the sweep runs no later than `deadline`: the clock is asked to wake the hub, and
   * the hub's own alarm is set as the backstop (once: an alarm due sooner stays). If the clock
   * cannot be reached the alarm itself is set for the deadline.
   */
  private async sweepBy(deadline: number): Promise<void> {
    const wanted = (await this.signUp(deadline)) ? Date.now() + CLOCK_TIMING.backstopMs : deadline;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > wanted) await this.ctx.storage.setAlarm(wanted);
  }

  /** Asks the liveness clock to wake this hub by `at`; false when it cannot be reached. */
  private async signUp(at: number): Promise<boolean> {
    try {
      await livenessClock(this.env).wakeBy(this.name, at);
      return true;
    } catch (err) {
      console.error(JSON.stringify({ at: "hub.clock", hub: this.name, error: String(err) }));
      return false;
    }
  }

  private send(socket: NodeSocket, message: GatewayMessage): void {
    socket.send(JSON.stringify(message));
  }

  /** Tells the node why, then closes; only this socket is affected. */
  private closeWith(socket: NodeSocket, code: CloseCode, reason: string): void {
    console.log(JSON.stringify({ at: "hub.close", node: socket.state?.claims.id, code, reason }));
    this.send(socket, { type: "error", code: `close_${code}`, message: reason });
    socket.close(code, reason);
  }
}

/** UTF-8 size of a frame; encodes only when the character count alone cannot settle it. */
function frameBytes(message: string | ArrayBuffer): number {
  if (typeof message !== "string") return message.byteLength;
  if (message.length > MAX_NODE_FRAME_BYTES || message.length * 3 <= MAX_NODE_FRAME_BYTES) return message.length;
  return new TextEncoder().encode(message).byteLength;
}

/** The advertised models the enrollment allows (all of them when it names none). */
export function boundedModels(advertised: readonly string[], enrolled: readonly string[] | undefined): string[] {
  return enrolled === undefined ? [...advertised] : advertised.filter((m) => enrolled.includes(m));
}

/** A queue change worth telling the Directory: to or from empty, or by a quarter (at least 2). */
export function queueStepped(before: number, after: number): boolean {
  if ((before === 0) !== (after === 0)) return true;
  return Math.abs(after - before) >= Math.max(2, before / 4);
}

/** A token-rate change worth telling the Directory: to or from zero, or by a quarter. */
export function rateStepped(before: number, after: number): boolean {
  if ((before === 0) !== (after === 0)) return true;
  return Math.abs(after - before) >= before / 4;
}
