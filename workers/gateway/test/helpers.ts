import { GatewayMessageSchema, PROTOCOL_VERSION, type GatewayMessage, type Hello, type NodeRecord } from "@meridian/protocol";
import { SELF, env, runInDurableObject } from "cloudflare:test";

export const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}` };
export const BASE = "https://gateway.test";

/** The tenant every test file starts with (tenant-setup.ts) and its key, as clients send it. */
export const TEST_TENANT_ID = "test-tenant";
export const TEST_TENANT_KEY = "mk_test000000000000000000000000000000000000";
export const CLIENT_KEY = { authorization: `Bearer ${TEST_TENANT_KEY}` };

export async function enroll(body: Record<string, unknown>): Promise<string> {
  const res = await SELF.fetch(`${BASE}/admin/nodes`, { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify(body) });
  if (res.status !== 201) throw new Error(`enroll ${res.status}: ${await res.text()}`);
  const json = (await res.json()) as { credential: string };
  return json.credential;
}

export interface TestNode {
  ws: WebSocket;
  messages: GatewayMessage[];
  closed: Promise<{ code: number; reason: string }>;
  next(): Promise<GatewayMessage>;
}

/** Opens a node socket through the gateway, as an agent would. */
export async function openNode(credential: string, extraHeaders: Record<string, string> = {}): Promise<TestNode> {
  const res = await SELF.fetch(`${BASE}/nodes/connect`, { headers: { upgrade: "websocket", authorization: `Bearer ${credential}`, ...extraHeaders } });
  const ws = res.webSocket;
  if (ws === null) throw new Error(`upgrade refused: ${res.status} ${await res.text()}`);
  ws.accept();
  const messages: GatewayMessage[] = [];
  const waiters: ((m: GatewayMessage) => void)[] = [];
  ws.addEventListener("message", (event) => {
    if (typeof event.data !== "string" || event.data === "pong") return;
    const msg = GatewayMessageSchema.parse(JSON.parse(event.data));
    const waiter = waiters.shift();
    if (waiter) waiter(msg);
    else messages.push(msg);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  return {
    ws,
    messages,
    closed,
    next: () => {
      const queued = messages.shift();
      return queued ? Promise.resolve(queued) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

export function hello(id: string, over: Partial<Hello> = {}): string {
  return JSON.stringify({ type: "hello", protocol: PROTOCOL_VERSION, node: id, kind: "gpu", gpu: { class: "h100", vramGb: 80, count: 8 }, capacity: 8, endpoint: `http://node-${id}.test`, heartbeatMs: 1000, ...over });
}

/** Liveness pings a joined test node sends, as an agent does between heartbeats. */
const KEEPALIVE_MS = 250;

/**
 * Enrolls, connects and says hello; resolves once welcomed. Unless `keepAlive` is false the
 * node then pings like a real agent, so a slow test run does not see it turn suspect.
 */
export async function joinNode(id: string, region: string, over: Record<string, unknown> = {}, connectHeaders: Record<string, string> = {}, keepAlive = true): Promise<TestNode> {
  const gpu = over.kind === undefined || over.kind === "gpu" ? { class: "h100", vramGb: 80, count: 8 } : undefined;
  const enrollment = { id, kind: "gpu", region, gpu, capacity: 8, ...over };
  return connectNode(await enroll(enrollment), id, { kind: enrollment.kind as Hello["kind"], gpu: enrollment.gpu as Hello["gpu"] }, connectHeaders, keepAlive);
}

/** Connects with an existing credential and says hello; resolves once welcomed. */
export async function connectNode(credential: string, id: string, helloFields: Partial<Hello> = {}, connectHeaders: Record<string, string> = {}, keepAlive = true): Promise<TestNode> {
  const node = await openNode(credential, connectHeaders);
  node.ws.send(hello(id, helloFields));
  const welcome = await node.next();
  if (welcome.type !== "welcome") throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`);
  if (keepAlive) {
    const timer = setInterval(() => {
      try {
        node.ws.send("ping");
      } catch {
        clearInterval(timer);
      }
    }, KEEPALIVE_MS);
    void node.closed.then(() => clearInterval(timer));
  }
  return node;
}

export interface FleetEntry {
  id: string;
  state: string;
  stateReason: string;
  health: string;
  healthy: boolean;
  region: string;
  load: number;
  slowStart?: { penaltyMs: number };
}

export async function fleet(): Promise<FleetEntry[]> {
  const res = await SELF.fetch(`${BASE}/admin/fleet`, { headers: ADMIN });
  return ((await res.json()) as { nodes: FleetEntry[] }).nodes;
}

/**
 * Polls until `check` stops throwing (the fleet snapshot refreshes in the background). The
 * default bound is about 10x what a quiet machine needs: CI runs on a busy 2-core machine.
 */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export const TOKYO_HEADERS = { ...CLIENT_KEY, "x-client-lat": "35.6762", "x-client-lon": "139.6503", "x-client-country": "JP" };

/** GET /route with these headers; the parsed body. */
export async function routeBody(headers: Record<string, string>): Promise<Record<string, unknown>> {
  const res = await SELF.fetch(`${BASE}/route`, { headers });
  return (await res.json()) as Record<string, unknown>;
}

/** A region no other gateway test puts nodes in, so its hub holds only the sockets of the test that uses it. */
export const QUIET_REGION = "vie";

/** A healthy H100 node's record in QUIET_REGION, as a hub would push it (for tests that feed the Directory directly). */
export function nodeRecord(id: string, seq: number, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    kind: "gpu",
    region: QUIET_REGION,
    gpu: { class: "h100", vramGb: 80, count: 8 },
    capacity: 8,
    endpoint: `http://node-${id}.test`,
    health: "healthy",
    healthReason: "hello",
    healthSince: 0,
    load: 0,
    inFlight: 0,
    free: 8,
    connectedAt: 0,
    seq,
    ...over,
  };
}

/**
 * Ages a node's last frame in its hub's socket attachment as if it had been silent for
 * `silentMs` (a frozen agent), so the next sweep judges it by that silence.
 */
export async function silenceNode(hubName: string, nodeId: string, silentMs = 10_000): Promise<void> {
  await runInDurableObject(env.REGION_HUB.getByName(hubName), (_instance: unknown, state) => {
    for (const ws of state.getWebSockets(nodeId)) {
      const attachment = ws.deserializeAttachment() as { lastFrameAt: number; arrivals: { lastArrivalAt: number } };
      const frozenAt = Date.now() - silentMs;
      ws.serializeAttachment({ ...attachment, lastFrameAt: frozenAt, arrivals: { ...attachment.arrivals, lastArrivalAt: frozenAt } });
    }
  });
}
