import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { randomBytes } from "node:crypto";
import { HelloSchema, PING_FRAME, PONG_FRAME, importRequestKey, signRequest, type Hello } from "@meridian/protocol";

/** One node socket as the fake gateway saw it. */
export interface FakeNodeSocket {
  ws: WebSocket;
  authorization: string | undefined;
  /** Every text frame received, in order. */
  frames: string[];
  hello: Hello | undefined;
  closed: { code: number; reason: string } | undefined;
}

export interface FakeGatewayOptions {
  adminToken?: string;
  /** Send a welcome as soon as a valid hello arrives (default true). */
  autoWelcome?: boolean;
  /** Status for the next N enrollments before answering normally (for retry tests). */
  failEnrollments?: { status: number; times: number };
  /** Join tokens `POST /nodes/join` accepts, each with its uses left and allowed region. */
  joinTokens?: Record<string, { uses: number; region?: string }>;
  /** Answers of `GET /nodes/me` per node id, in turn (the last repeats); absent: 404. */
  selfViews?: Record<string, unknown[]>;
}

/**
 * A tiny stand-in for the gateway, on 127.0.0.1: `POST /admin/nodes` (admin token) and
 * `POST /nodes/join` (join token) issue `cred-<id>`, `/nodes/connect` accepts `Bearer cred-*`
 * and answers hello with a welcome carrying the node's request key, and ping with pong;
 * `signedFetch` sends a request to a node signed as the gateway forwards it.
 */
export class FakeGateway {
  readonly sockets: FakeNodeSocket[] = [];
  readonly enrollments: unknown[] = [];
  readonly joins: Array<{ token: string; body: unknown }> = [];
  selfViewRequests = 0;
  /** Request key per node id, made at the node's first hello. */
  readonly requestKeys = new Map<string, string>();
  upgradeAttempts = 0;
  enrollRequests = 0;
  private readonly server: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly options: FakeGatewayOptions;
  private port = 0;

  private constructor(options: FakeGatewayOptions) {
    this.options = options;
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  static async start(options: FakeGatewayOptions = {}): Promise<FakeGateway> {
    const gateway = new FakeGateway(options);
    await new Promise<void>((resolve) => gateway.server.listen(0, "127.0.0.1", resolve));
    gateway.port = (gateway.server.address() as AddressInfo).port;
    return gateway;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  welcome(socket: FakeNodeSocket, region = "nrt", heartbeatMs = 250): void {
    const node = socket.hello?.node ?? "unknown";
    socket.ws.send(JSON.stringify({ type: "welcome", node, region, heartbeatMs, ping: PING_FRAME, requestKey: this.requestKey(node) }));
  }

  requestKey(nodeId: string): string {
    let key = this.requestKeys.get(nodeId);
    if (key === undefined) {
      key = randomBytes(32).toString("base64url");
      this.requestKeys.set(nodeId, key);
    }
    return key;
  }

  /** Fetches `url` signed for `nodeId` as the gateway forwards requests (path and query of the URL). */
  async signedFetch(nodeId: string, url: string, init: RequestInit = {}, options: { signAs?: string; nowMs?: number } = {}): Promise<Response> {
    const key = await importRequestKey(this.requestKey(nodeId));
    const target = new URL(url);
    const signature = await signRequest(key, init.method ?? "GET", `${target.pathname}${target.search}`, options.signAs ?? nodeId, options.nowMs ?? Date.now());
    return fetch(url, { ...init, headers: { ...Object.fromEntries(new Headers(init.headers)), ...signature } });
  }

  /** Parsed JSON frames of a socket (pings/pongs left out). */
  static jsonFrames(socket: FakeNodeSocket): Array<Record<string, unknown>> {
    return socket.frames.filter((f) => f.startsWith("{")).map((f) => JSON.parse(f) as Record<string, unknown>);
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === "POST" && req.url === "/nodes/join") {
      this.onJoin(req, res);
      return;
    }
    if (req.method === "GET" && req.url === "/nodes/me") {
      this.onSelfView(req, res);
      return;
    }
    if (req.method !== "POST" || req.url !== "/admin/nodes") {
      respond(res, 404, { error: { code: "not_found", message: "no route" } });
      return;
    }
    this.enrollRequests++;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const failing = this.options.failEnrollments;
      if (failing !== undefined && failing.times > 0) {
        failing.times--;
        respond(res, failing.status, { error: { code: "unavailable", message: "try again" } });
        return;
      }
      if (req.headers.authorization !== `Bearer ${this.options.adminToken ?? "admin-secret"}`) {
        respond(res, 401, { error: { code: "unauthorized", message: "bad admin token" } });
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id?: unknown };
      if (typeof body.id !== "string") {
        respond(res, 400, { error: { code: "invalid_enrollment", message: "id is required" } });
        return;
      }
      this.enrollments.push(body);
      respond(res, 201, { credential: `cred-${body.id}`, node: body, expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    });
  }

  private onJoin(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id?: unknown; region?: unknown };
      this.joins.push({ token, body });
      const grant = this.options.joinTokens?.[token];
      if (grant === undefined || grant.uses <= 0) {
        respond(res, 401, { error: { code: "invalid_join_token", message: "join token unknown, used or expired" } });
        return;
      }
      if (grant.region !== undefined && body.region !== grant.region) {
        respond(res, 403, { error: { code: "outside_join_scope", message: `this token enrolls nodes in ${grant.region} only` } });
        return;
      }
      if (typeof body.id !== "string") {
        respond(res, 400, { error: { code: "invalid_enrollment", message: "id is required" } });
        return;
      }
      const id = body.id;
      if (this.enrollments.some((e) => typeof e === "object" && e !== null && "id" in e && e.id === id)) {
        respond(res, 409, { error: { code: "node_exists", message: `node ${id} is already enrolled` } });
        return;
      }
      grant.uses--;
      this.enrollments.push(body);
      respond(res, 201, { credential: `cred-${id}`, node: body, expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    });
  }

  private onSelfView(req: IncomingMessage, res: ServerResponse): void {
    this.selfViewRequests++;
    const nodeId = (req.headers.authorization ?? "").replace(/^Bearer cred-/, "");
    const views = this.options.selfViews?.[nodeId];
    if (views === undefined || views.length === 0) {
      respond(res, 404, { error: { code: "not_found", message: "no route" } });
      return;
    }
    respond(res, 200, views.length > 1 ? views.shift() : views[0]);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgradeAttempts++;
    const authorization = req.headers.authorization;
    if (req.url !== "/nodes/connect" || authorization === undefined || !authorization.startsWith("Bearer cred-")) {
      const body = JSON.stringify({ error: { code: "bad_credential", message: "credential rejected" } });
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const record: FakeNodeSocket = { ws, authorization, frames: [], hello: undefined, closed: undefined };
      this.sockets.push(record);
      ws.on("message", (data, isBinary) => {
        if (isBinary) return;
        const text = data.toString();
        record.frames.push(text);
        if (text === PING_FRAME) {
          ws.send(PONG_FRAME);
          return;
        }
        const hello = HelloSchema.safeParse(JSON.parse(text));
        if (hello.success) {
          record.hello = hello.data;
          if (this.options.autoWelcome !== false) this.welcome(record);
        }
      });
      ws.on("close", (code, reason) => {
        record.closed = { code, reason: reason.toString() };
      });
    });
  }
}

function respond(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Polls until `predicate` holds; fails with `what` after the timeout. */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 4_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
