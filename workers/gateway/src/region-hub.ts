import { DurableObject } from "cloudflare:workers";
import {
  CloseCode,
  CredentialClaimsSchema,
  HELLO_TIMEOUT_MS,
  MAX_NODE_FRAME_BYTES,
  NodeMessageSchema,
  PING_FRAME,
  PONG_FRAME,
  PROTOCOL_VERSION,
  DEFAULT_HOTSPOT_MBPS,
  tierForMbps,
  type CredentialClaims,
  type GatewayMessage,
  type Heartbeat,
  type Hello,
  FLAP_WINDOW_MS,
  identityMismatch,
  newArrivalStats,
  observeArrival,
  stepLiveness,
  type ArrivalStats,
  type NodeHealth,
  type NodeRecord,
  type NodeUpdate,
} from "@meridian/protocol";
import { z } from "zod";
import type { Env } from "./env";

const GeoFlagSchema = z.strictObject({ colo: z.string().max(8), km: z.number().min(0) });

/** Header on the internal upgrade request: the claims the gateway already verified. */
export const VERIFIED_CLAIMS_HEADER = "x-meridian-verified-claims";
/** Header on the internal upgrade request: JSON {colo, km} when the node connected from far outside its region. */
export const GEO_FLAG_HEADER = "x-meridian-geo-flag";

/** Never sweep more often than this, however close deadlines are. */
const MIN_SWEEP_GAP_MS = 50;
/** Coalescing window for pushes to the Directory: bursts of joins travel as one call. */
const PUSH_DELAY_MS = 25;
const PUSH_RETRY_MS = 1000;
/** A load (or congestion) change smaller than this is not worth a Directory update. */
const LOAD_STEP = 0.05;

/** Per-socket state, kept in the socket attachment so it survives hibernation. */
interface Attachment {
  claims: CredentialClaims;
  acceptedAt: number;
  lastFrameAt: number;
  /** Null until a valid hello arrives. */
  record: NodeRecord | null;
  heartbeatMs: number;
  /** Load as last sent to the Directory: steps are measured from here, so slow drift still arrives. */
  pushedLoad: number;
  /** Set by the gateway when the socket arrived far from the enrolled region. */
  geoFlag?: { colo: string; km: number };
  /** Liveness bookkeeping across sweeps (see stepLiveness). */
  goodChecks: number;
  recentDowns: number[];
  /** The failure detector's view of this node's frame gaps; null until hello. */
  arrivals: ArrivalStats | null;
}

type Health = { health: NodeHealth; reason: string };

/**
 * One per region: terminates the WebSockets of that region's nodes (hibernation API),
 * tracks liveness cheaply and tells the Directory about joins, leaves, health flips and
 * load steps. Nothing is written to storage per heartbeat, only on membership changes.
 */
export class RegionHub extends DurableObject<Env> {
  private readonly pending = new Map<string, NodeUpdate>();
  private pushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Heartbeats since the last report to the Directory (for /metrics). */
  private heartbeatsUnreported = 0;
  private heartbeatsReportedAt = 0;
  /** Monotonic across restarts (clock-based), so the Directory can order updates. */
  private seq = Date.now() * 1000;
  /**
   * When nodes went down or left, so one that comes back on a new connection (a frozen agent
   * reconnects when it resumes) still gets slow start. Memory only: after an eviction a
   * returning node simply starts at full weight.
   */
  private readonly outSince = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS members (id TEXT PRIMARY KEY, region TEXT NOT NULL, joined_at INTEGER NOT NULL)");
      // Nodes recorded as members but with no socket left (the hub was restarted or
      // redeployed) are gone: tell the Directory so nobody routes to them.
      const live = new Set(ctx.getWebSockets().map((ws) => this.attachment(ws)?.claims.id));
      for (const row of ctx.storage.sql.exec<{ id: string; region: string }>("SELECT id, region FROM members")) {
        if (!live.has(row.id)) this.leave(row.id, row.region);
      }
    });
  }

  override async fetch(request: Request): Promise<Response> {
    const claims = CredentialClaimsSchema.safeParse(JSON.parse(request.headers.get(VERIFIED_CLAIMS_HEADER) ?? "null"));
    if (!claims.success || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("internal: expected a verified node upgrade", { status: 400 });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const now = Date.now();
    this.ctx.acceptWebSocket(server, [claims.data.id]);
    const geoFlag = GeoFlagSchema.safeParse(JSON.parse(request.headers.get(GEO_FLAG_HEADER) ?? "null"));
    const attachment: Attachment = { claims: claims.data, acceptedAt: now, lastFrameAt: now, record: null, heartbeatMs: 0, pushedLoad: 0, goodChecks: 0, recentDowns: [], arrivals: null, ...(geoFlag.success ? { geoFlag: geoFlag.data } : {}) };
    server.serializeAttachment(attachment);
    await this.sweepBy(now + HELLO_TIMEOUT_MS);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const state = this.attachment(ws);
    if (state === null) return this.closeWith(ws, CloseCode.internalError, "lost connection state");
    try {
      const size = frameBytes(message);
      if (size > MAX_NODE_FRAME_BYTES) return this.closeWith(ws, CloseCode.frameTooLarge, `frame of ${size} bytes exceeds ${MAX_NODE_FRAME_BYTES}`);
      if (typeof message !== "string") return this.closeWith(ws, CloseCode.invalidMessage, "binary frames are not part of the protocol");
      state.lastFrameAt = Date.now();
      this.observeFrames(ws, state, state.lastFrameAt);
      if (message === PING_FRAME) {
        // Normally answered by the auto-response; counts as liveness when it reaches us.
        ws.serializeAttachment(state);
        return;
      }
      let json: unknown;
      try {
        json = JSON.parse(message);
      } catch {
        return this.closeWith(ws, CloseCode.invalidMessage, "frame is not JSON");
      }
      const parsed = NodeMessageSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return this.closeWith(ws, CloseCode.invalidMessage, `invalid message: ${issue?.path.join(".") || "type"}: ${issue?.message ?? "invalid"}`);
      }
      const msg = parsed.data;
      if (msg.type === "hello") return this.onHello(ws, state, msg);
      if (state.record === null) return this.closeWith(ws, CloseCode.invalidMessage, "the first message must be hello");
      if (msg.type === "heartbeat") {
        this.heartbeatsUnreported++;
        return this.onHeartbeat(ws, state, state.record, msg);
      }
      this.setHealth(state.record, { health: "draining", reason: `drain${msg.reason ? `: ${msg.reason}` : ""}` });
      ws.serializeAttachment(state);
      this.push(state.record);
    } catch (err) {
      console.error(JSON.stringify({ at: "hub.message", node: state.claims.id, error: String(err) }));
      this.closeWith(ws, CloseCode.internalError, "internal error");
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.onSocketEnd(ws, `closed ${code}${reason ? ` ${reason}` : ""}`);
    try {
      ws.close(code === 1005 || code === 1006 ? CloseCode.normal : code, "bye");
    } catch {
      // Already closed: nothing to answer.
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.onSocketEnd(ws, `error ${String(error)}`);
  }

  /**
   * Liveness sweep: silent nodes go down, resumed ones come back, stuck hellos are closed.
   * The alarm is set for the earliest moment anything could change (a node's deadline),
   * not on a fixed tick, so an idle fleet wakes its hubs about once per timeout window.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const sockets = this.ctx.getWebSockets();
    let next = Number.POSITIVE_INFINITY;
    for (const ws of sockets) {
      const state = this.attachment(ws);
      if (state === null) continue;
      try {
        next = Math.min(next, this.checkLiveness(ws, state, now));
      } catch (err) {
        console.error(JSON.stringify({ at: "hub.sweep", node: state.claims.id, error: String(err) }));
      }
    }
    await this.reportHeartbeats(now, sockets[0]);
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(Math.max(next, now + MIN_SWEEP_GAP_MS));
  }

  /** Applies one socket's liveness rules; returns when it next needs looking at. */
  private checkLiveness(ws: WebSocket, state: Attachment, now: number): number {
    if (state.record === null) {
      const deadline = state.acceptedAt + HELLO_TIMEOUT_MS;
      if (now < deadline) return deadline;
      this.closeWith(ws, CloseCode.helloTimeout, `no hello within ${HELLO_TIMEOUT_MS} ms`);
      return Number.POSITIVE_INFINITY;
    }
    const observed = this.observeFrames(ws, state);
    const arrivals = state.arrivals ?? newArrivalStats(state.heartbeatMs, state.lastFrameAt);
    const silentMs = now - arrivals.lastArrivalAt;
    const record = state.record;
    const limits = { heartbeatMs: state.heartbeatMs, suspectAfterMs: arrivals.suspectAfterMs, downAfterMs: arrivals.downAfterMs };
    const step = stepLiveness({ health: record.health, reason: record.healthReason, goodChecks: state.goodChecks, recentDowns: state.recentDowns }, silentMs, limits, now);
    if (step.changed) {
      state.goodChecks = step.goodChecks;
      state.recentDowns = step.recentDowns;
      if (step.health !== record.health) {
        // Back from down: routing ramps it in (slow start) instead of handing it a herd at once.
        if (record.health === "down" && step.health === "healthy") record.returnedAt = now;
        if (step.health === "down") this.outSince.set(record.id, now);
        this.setHealth(record, { health: step.health, reason: step.reason });
        this.push(record);
        console.log(JSON.stringify({ at: "hub.health", node: record.id, region: record.region, health: step.health, reason: step.reason }));
      } else {
        record.healthReason = step.reason;
      }
      ws.serializeAttachment(state);
    } else if (observed) ws.serializeAttachment(state);
    return step.nextCheckAt;
  }

  /**
   * Feeds the failure detector the frames that arrived since it last looked: the latest
   * auto-answered ping (the runtime keeps only its time) and, when given, a frame that woke
   * us. Sweeps come at least every suspect deadline, under two gaps, so they rarely skip a
   * ping; when one does, the gap looks like a lost frame, which the detector folds out.
   * Returns whether the statistics changed (the caller saves the attachment).
   */
  private observeFrames(ws: WebSocket, state: Attachment, wokenAt?: number): boolean {
    if (state.arrivals === null) return false;
    const before = state.arrivals;
    const pingAt = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime();
    if (pingAt !== undefined) state.arrivals = observeArrival(state.arrivals, pingAt, state.heartbeatMs);
    if (wokenAt !== undefined) state.arrivals = observeArrival(state.arrivals, wokenAt, state.heartbeatMs);
    return state.arrivals !== before;
  }

  // ---- message handlers ----------------------------------------------------------------

  private onHello(ws: WebSocket, state: Attachment, hello: Hello): void {
    const claims = state.claims;
    if (state.record !== null) return this.closeWith(ws, CloseCode.invalidMessage, "hello was already received");
    if (hello.protocol !== PROTOCOL_VERSION) return this.closeWith(ws, CloseCode.unsupportedProtocol, `protocol ${hello.protocol} is not supported; speak ${PROTOCOL_VERSION}`);
    const mismatch = identityMismatch(claims, hello);
    if (mismatch !== null) return this.closeWith(ws, CloseCode.identityMismatch, mismatch);
    // A node connects once: a newer connection replaces an older one (e.g. after a network flap).
    for (const other of this.ctx.getWebSockets(claims.id)) {
      if (other !== ws) this.closeWith(other, CloseCode.replaced, "replaced by a newer connection of the same node");
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
      ...(claims.gpu ? { gpu: claims.gpu } : {}),
      ...(claims.partner ? { partner: claims.partner, congestion: 0 } : {}),
      ...(claims.kind === "hotspot" ? { maxMbps: claims.maxMbps ?? DEFAULT_HOTSPOT_MBPS } : {}),
      ...(state.geoFlag ? { geoFlag: state.geoFlag } : {}),
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
    ws.serializeAttachment(state);
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO members (id, region, joined_at) VALUES (?, ?, ?)", claims.id, claims.region, now);
    this.send(ws, { type: "welcome", node: claims.id, region: claims.region, heartbeatMs: hello.heartbeatMs, ping: PING_FRAME });
    this.push(state.record);
    void this.sweepBy(now + state.arrivals.suspectAfterMs + 1).catch((err: unknown) => console.error(JSON.stringify({ at: "hub.alarm", error: String(err) })));
    console.log(JSON.stringify({ at: "hub.join", node: claims.id, region: claims.region, endpoint: state.record.endpoint }));
    if (state.geoFlag) console.warn(JSON.stringify({ at: "hub.geo_flag", node: claims.id, region: claims.region, colo: state.geoFlag.colo, km: state.geoFlag.km }));
  }

  private onHeartbeat(ws: WebSocket, state: Attachment, record: NodeRecord, beat: Heartbeat): void {
    const free = Math.min(beat.free, record.capacity);
    // A hotspot cannot claim a better tier than its enrolled backhaul supports.
    const tier = record.kind === "hotspot" && beat.tier !== undefined ? Math.min(beat.tier, tierForMbps(record.maxMbps ?? DEFAULT_HOTSPOT_MBPS)) : undefined;
    const congestion = record.kind === "carrier" ? beat.congestion : undefined;
    const stepped =
      Math.abs(beat.load - state.pushedLoad) >= LOAD_STEP - 1e-9 ||
      (free === 0) !== (record.free === 0) ||
      record.health === "suspect" ||
      (tier !== undefined && tier !== record.tier) ||
      (congestion !== undefined && Math.abs(congestion - (record.congestion ?? 0)) >= LOAD_STEP - 1e-9);
    record.load = beat.load;
    record.inFlight = beat.inFlight;
    record.free = free;
    if (tier !== undefined) record.tier = tier;
    if (beat.users !== undefined && record.kind === "hotspot") record.users = beat.users;
    // Congestion moves in steps like load, so the Directory is not told about every wobble.
    if (congestion !== undefined && (stepped || record.congestion === undefined)) record.congestion = congestion;
    if (stepped) {
      state.pushedLoad = beat.load;
      this.push(record);
    }
    ws.serializeAttachment(state);
  }

  private onSocketEnd(ws: WebSocket, why: string): void {
    const state = this.attachment(ws);
    if (state === null) return;
    const stillConnected = this.ctx.getWebSockets(state.claims.id).some((other) => other !== ws && this.attachment(other)?.record !== null);
    if (state.record !== null && !stillConnected) {
      console.log(JSON.stringify({ at: "hub.leave", node: state.claims.id, region: state.claims.region, why }));
      this.leave(state.claims.id, state.claims.region);
    }
  }

  // ---- helpers -------------------------------------------------------------------------

  private leave(id: string, region: string): void {
    this.outSince.set(id, Date.now());
    for (const [node, at] of this.outSince) if (Date.now() - at >= FLAP_WINDOW_MS) this.outSince.delete(node);
    this.ctx.storage.sql.exec("DELETE FROM members WHERE id = ?", id);
    this.queue({ id, region, gone: true, seq: this.seq++ });
  }

  private setHealth(record: NodeRecord, next: Health): void {
    record.health = next.health;
    record.healthReason = next.reason;
    record.healthSince = Date.now();
  }

  private push(record: NodeRecord): void {
    this.queue({ ...record, seq: this.seq++ });
  }

  private queue(update: NodeUpdate): void {
    this.pending.set(update.id, update);
    this.schedulePush(PUSH_DELAY_MS);
  }

  private schedulePush(delayMs: number): void {
    if (this.pushTimer !== null) return;
    this.pushTimer = setTimeout(() => {
      this.pushTimer = null;
      void this.flush();
    }, delayMs);
  }

  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending.clear();
    try {
      await this.env.DIRECTORY.get(this.env.DIRECTORY.idFromName("global")).applyUpdates(batch);
    } catch (err) {
      console.error(JSON.stringify({ at: "hub.push", updates: batch.length, error: String(err) }));
      // Keep what failed unless a newer update for the same node came in meanwhile.
      for (const update of batch) {
        const newer = this.pending.get(update.id);
        if (newer === undefined || newer.seq < update.seq) this.pending.set(update.id, update);
      }
      this.schedulePush(PUSH_RETRY_MS);
    }
  }

  /** Heartbeat counts go to the Directory at most once a second, piggybacked on the sweep. */
  private async reportHeartbeats(now: number, anySocket: WebSocket | undefined): Promise<void> {
    if (this.heartbeatsUnreported === 0 || now - this.heartbeatsReportedAt < 1000) return;
    const region = anySocket === undefined ? undefined : this.attachment(anySocket)?.claims.region;
    if (region === undefined) return;
    const count = this.heartbeatsUnreported;
    this.heartbeatsUnreported = 0;
    this.heartbeatsReportedAt = now;
    try {
      await this.env.DIRECTORY.get(this.env.DIRECTORY.idFromName("global")).addHeartbeats(region, count);
    } catch (err) {
      this.heartbeatsUnreported += count;
      console.error(JSON.stringify({ at: "hub.heartbeats", region, error: String(err) }));
    }
  }

  /** Makes sure the sweep runs no later than `deadline`. */
  private async sweepBy(deadline: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > deadline) await this.ctx.storage.setAlarm(deadline);
  }

  private attachment(ws: WebSocket): Attachment | null {
    return (ws.deserializeAttachment() as Attachment | null) ?? null;
  }

  private send(ws: WebSocket, message: GatewayMessage): void {
    ws.send(JSON.stringify(message));
  }

  /** Tells the node why, then closes; only this socket is affected. */
  private closeWith(ws: WebSocket, code: CloseCode, reason: string): void {
    const state = this.attachment(ws);
    console.log(JSON.stringify({ at: "hub.close", node: state?.claims.id, code, reason }));
    try {
      this.send(ws, { type: "error", code: `close_${code}`, message: reason });
      ws.close(code, reason.slice(0, 120));
    } catch {
      // The peer is already gone.
    }
  }
}

/** UTF-8 size of a frame; encodes only when the character count alone cannot settle it. */
function frameBytes(message: string | ArrayBuffer): number {
  if (typeof message !== "string") return message.byteLength;
  if (message.length > MAX_NODE_FRAME_BYTES || message.length * 3 <= MAX_NODE_FRAME_BYTES) return message.length;
  return new TextEncoder().encode(message).byteLength;
}
