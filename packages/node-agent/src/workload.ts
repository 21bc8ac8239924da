import { z } from "zod";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_HOTSPOT_MBPS, firstIssue, tierForMbps, type GpuHardware, type NodeKind } from "@meridian/protocol";
import { describeError, silentLogger, type Logger } from "./log";
import { hashString, seededRandom } from "./random";

export const MAX_CHAT_BODY_BYTES = 1024 * 1024;
export const MAX_DATA_BYTES = 1024 * 1024 * 1024;
export const DATA_CHUNK_BYTES = 64 * 1024;
export const DEFAULT_MAX_TOKENS = 16;
export const MAX_TOKENS_LIMIT = 1024;
export const DEFAULT_TOKEN_MS = 15;

/** Who a node is; `region` may be learnt late (from the gateway's welcome). */
export interface NodeIdentity {
  id: string;
  kind: NodeKind;
  region: string;
  gpu?: GpuHardware;
  capacity: number;
  /** Carrier backbone nodes: the partner they belong to. */
  partner?: string;
  /** Hotspots: enrolled backhaul, Mbit/s. */
  maxMbps?: number;
}

export interface LoadSnapshot {
  inFlight: number;
  /** Request slots still free: max(0, capacity - inFlight). */
  free: number;
  /** min(1, inFlight / capacity). */
  load: number;
  /** Hotspots: throughput tier and attached users. */
  tier?: number;
  users?: number;
  /** Carrier backbone nodes: congestion 0..1. */
  congestion?: number;
}

/** What a connection needs from the workload: current load, and a way to wait for in-flight work. */
export interface LoadSource {
  snapshot(): LoadSnapshot;
  /** Resolves true once nothing is in flight, false when the timeout passes first. */
  whenIdle(timeoutMs: number): Promise<boolean>;
}

export interface WorkloadOptions {
  /** Delay between two simulated tokens. */
  tokenMs?: number;
  logger?: Logger;
}

type RouteHandler = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => Promise<void>;

interface Route {
  method: "GET" | "POST";
  handler: RouteHandler;
}

/** The simulated work one node serves: identity, OpenAI-style chat on GPU nodes, bulk data on hotspots. */
export class NodeWorkload implements LoadSource {
  readonly identity: NodeIdentity;
  readonly tokenMs: number;
  /** Model id served by a GPU node ("meridian-h100"); undefined for hotspots. */
  readonly modelId: string | undefined;
  private readonly logger: Logger;
  private readonly routes: ReadonlyMap<string, Route>;
  private readonly modelCreated = Math.floor(Date.now() / 1000);
  private inFlightCount = 0;
  /** Simulated radio/backbone conditions, reported in heartbeats (see setTier, setCongestion). */
  private tier: number | undefined;
  private users = 0;
  private congestion = 0;
  private readonly idleWaiters = new Set<() => void>();
  /** Chaos: "killed" destroys every request's socket, "frozen" holds requests until thaw. */
  private chaosMode: "up" | "killed" | "frozen" = "up";
  private readonly heldRequests: Array<{ req: IncomingMessage; serve: () => void }> = [];

  constructor(identity: NodeIdentity, options: WorkloadOptions = {}) {
    if (!Number.isInteger(identity.capacity) || identity.capacity < 1) {
      throw new Error(`node ${identity.id}: capacity must be a positive integer, got ${identity.capacity}`);
    }
    if ((identity.kind === "gpu") !== (identity.gpu !== undefined)) {
      throw new Error(`node ${identity.id}: gpu hardware is required for gpu nodes and only for them`);
    }
    this.identity = identity;
    this.tokenMs = Math.max(0, options.tokenMs ?? DEFAULT_TOKEN_MS);
    this.logger = options.logger ?? silentLogger;
    this.modelId = identity.gpu ? `meridian-${identity.gpu.class}` : undefined;
    if (identity.kind === "hotspot") this.tier = tierForMbps(identity.maxMbps ?? DEFAULT_HOTSPOT_MBPS);

    const routes = new Map<string, Route>([["/v1/whoami", { method: "GET", handler: async (_req, res) => this.whoami(res) }]]);
    if (identity.kind === "gpu") {
      routes.set("/v1/models", { method: "GET", handler: async (_req, res) => this.models(res) });
      routes.set("/v1/chat/completions", { method: "POST", handler: (req, res) => this.chatCompletions(req, res) });
    } else {
      routes.set("/v1/data", { method: "GET", handler: (_req, res, query) => this.data(res, query) });
    }
    this.routes = routes;
  }

  /** Hotspots: the measured tier and attached users to report (the gateway caps the tier to the enrolled backhaul). */
  setQuality(tier: number, users: number): void {
    this.tier = Math.min(5, Math.max(1, Math.round(tier)));
    this.users = Math.max(0, Math.round(users));
  }

  /** Carrier backbone nodes: the congestion to report, 0..1. */
  setCongestion(congestion: number): void {
    this.congestion = Math.min(1, Math.max(0, Math.round(congestion * 1000) / 1000));
  }

  get chaos(): "up" | "killed" | "frozen" {
    return this.chaosMode;
  }

  /** Chaos, like kill -9: every request (held ones too) gets its connection destroyed. */
  kill(): void {
    this.chaosMode = "killed";
    for (const held of this.heldRequests.splice(0)) held.req.socket.destroy();
  }

  /** Chaos, like SIGSTOP: requests hang without an answer until thaw(). */
  freeze(): void {
    if (this.chaosMode === "up") this.chaosMode = "frozen";
  }

  /** Chaos, like SIGCONT: held requests whose client still waits are served now. */
  thaw(): void {
    if (this.chaosMode !== "frozen") return;
    this.chaosMode = "up";
    for (const held of this.heldRequests.splice(0)) held.serve();
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  snapshot(): LoadSnapshot {
    const { capacity } = this.identity;
    const inFlight = this.inFlightCount;
    return {
      inFlight,
      free: Math.max(0, capacity - inFlight),
      // Rounded so heartbeats carry tidy numbers; 3 decimals is far below the 0.05 change threshold.
      load: Math.min(1, Math.round((inFlight / capacity) * 1000) / 1000),
      ...(this.identity.kind === "hotspot" && this.tier !== undefined ? { tier: this.tier, users: this.users } : {}),
      ...(this.identity.kind === "carrier" ? { congestion: this.congestion } : {}),
    };
  }

  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlightCount === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onIdle = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      // setTimeout treats huge delays as 1 ms, so "forever" gets no timer at all.
      const timer =
        timeoutMs < 2 ** 31
          ? setTimeout(() => {
              this.idleWaiters.delete(onIdle);
              resolve(false);
            }, timeoutMs)
          : undefined;
      this.idleWaiters.add(onIdle);
    });
  }

  /**
   * Serves one request. `pathname` is the path below the node's endpoint (e.g. "/v1/whoami"),
   * so a shared server can mount many nodes under different prefixes.
   * Draining does not change anything here: requests already routed to the node are served.
   */
  handle(req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams): void {
    if (this.chaosMode === "killed") {
      req.socket.destroy(); // like a dead process: the client sees a connection error
      return;
    }
    if (this.chaosMode === "frozen") {
      this.heldRequests.push({
        req,
        serve: () => {
          if (!res.destroyed && !req.socket.destroyed) this.handle(req, res, pathname, query);
        },
      });
      return;
    }
    this.trackInFlight(res);
    res.setHeader("x-served-by", this.identity.id);

    const route = this.routes.get(pathname);
    if (route === undefined) {
      sendError(res, 404, "not_found", `${this.identity.kind} node ${this.identity.id} has no route ${pathname}`);
      return;
    }
    if (req.method !== route.method) {
      res.setHeader("allow", route.method);
      sendError(res, 405, "method_not_allowed", `${pathname} accepts ${route.method}, not ${req.method ?? "?"}`);
      return;
    }
    route.handler(req, res, query).catch((error: unknown) => {
      this.logger.error(`${req.method ?? "?"} ${pathname} failed: ${describeError(error)}`);
      if (!res.headersSent) sendError(res, 500, "internal_error", "the node failed to serve the request");
      else res.destroy();
    });
  }

  private trackInFlight(res: ServerResponse): void {
    this.inFlightCount++;
    // "close" fires once per response, both after a normal finish and when the client goes away.
    res.once("close", () => {
      this.inFlightCount--;
      if (this.inFlightCount === 0) {
        const waiters = [...this.idleWaiters];
        this.idleWaiters.clear();
        for (const wake of waiters) wake();
      }
    });
  }

  private whoami(res: ServerResponse): void {
    const { id, region, kind } = this.identity;
    sendJson(res, 200, { node: id, region, kind });
  }

  private models(res: ServerResponse): void {
    sendJson(res, 200, {
      object: "list",
      data: [{ id: this.modelId, object: "model", created: this.modelCreated, owned_by: "meridian" }],
    });
  }

  private async chatCompletions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, MAX_CHAT_BODY_BYTES);
    if (body.kind === "aborted") return;
    if (body.kind === "too_large") {
      // The rest of the body is never read, so the connection cannot be reused.
      res.setHeader("connection", "close");
      sendError(res, 413, "payload_too_large", `request body exceeds ${MAX_CHAT_BODY_BYTES} bytes`);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(body.text);
    } catch (error) {
      sendError(res, 400, "invalid_json", `request body is not valid JSON: ${describeError(error)}`);
      return;
    }
    const parsed = parseChatCompletionRequest(json);
    if (!parsed.ok) {
      sendError(res, 400, "invalid_request", parsed.message);
      return;
    }
    const request = parsed.value;
    const tokenCount = Math.min(request.max_tokens ?? DEFAULT_MAX_TOKENS, MAX_TOKENS_LIMIT);
    const words = simulatedWords(this.identity.id, request.messages, tokenCount);
    const promptTokens = countPromptTokens(request.messages);
    const completion = {
      id: `chatcmpl-${randomBytes(12).toString("hex")}`,
      created: Math.floor(Date.now() / 1000),
      // The simulated fleet answers any requested model; the id reports what really served it.
      model: this.modelId,
    };

    // Stop generating as soon as the client goes away.
    const clientGone = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) clientGone.abort();
    });

    if (request.stream !== true) {
      if (!(await pause(this.tokenMs * tokenCount, clientGone.signal))) return;
      sendJson(res, 200, {
        ...completion,
        object: "chat.completion",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: words.join("") },
            finish_reason: "length",
          },
        ],
        usage: { prompt_tokens: promptTokens, completion_tokens: tokenCount, total_tokens: promptTokens + tokenCount },
      });
      return;
    }

    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    const writeChunk = (delta: { role?: string; content?: string }, finishReason: string | null): void => {
      const chunk = {
        ...completion,
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta, finish_reason: finishReason }],
      };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    };
    writeChunk({ role: "assistant", content: "" }, null);
    for (const word of words) {
      if (!(await pause(this.tokenMs, clientGone.signal))) return;
      writeChunk({ content: word }, null);
    }
    writeChunk({}, "length");
    res.end("data: [DONE]\n\n");
  }

  private async data(res: ServerResponse, query: URLSearchParams): Promise<void> {
    const raw = query.get("bytes");
    const bytes = raw !== null && /^\d{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(bytes >= 0 && bytes <= MAX_DATA_BYTES)) {
      sendError(res, 400, "invalid_request", `query parameter bytes must be an integer in 0..${MAX_DATA_BYTES}`);
      return;
    }
    // Optional pacing, like a radio link: chunkBytes per write and pauseMs between writes.
    const chunkBytes = boundedInt(query.get("chunkBytes"), 1, DATA_CHUNK_BYTES) ?? DATA_CHUNK_BYTES;
    const pauseMs = boundedInt(query.get("pauseMs"), 0, 10_000) ?? 0;
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(bytes) });
    let remaining = bytes;
    while (remaining > 0) {
      if (res.destroyed) return; // client went away
      const size = Math.min(chunkBytes, remaining);
      const writable = res.write(size === DATA_CHUNK_BYTES ? DATA_CHUNK : DATA_CHUNK.subarray(0, size));
      remaining -= size;
      if (!writable) await drainedOrClosed(res);
      if (pauseMs > 0 && remaining > 0) await sleep(pauseMs);
    }
    res.end();
  }
}

/** An integer query parameter within [min, max]; undefined when absent or out of range. */
function boundedInt(raw: string | null, min: number, max: number): number | undefined {
  if (raw === null || !/^\d{1,6}$/.test(raw)) return undefined;
  const value = Number(raw);
  return value >= min && value <= max ? value : undefined;
}

/** Repeating byte pattern (0..250), reused for every chunk: never mutated while queued. */
const DATA_CHUNK = Buffer.from(Array.from({ length: DATA_CHUNK_BYTES }, (_, i) => i % 251));

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

/** Waits `ms`; false when the signal aborted first. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

// ---- chat request -----------------------------------------------------------------------

/** OpenAI-style chat body. Unknown fields (temperature, top_p...) pass, as OpenAI-compatible servers allow. */
export const ChatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1).max(256).optional(),
  messages: z
    .array(
      z.looseObject({
        role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
        content: z.union([z.string(), z.array(z.unknown()), z.null()]),
      }),
    )
    .min(1),
  stream: z.boolean().nullish(),
  max_tokens: z.int().min(1).nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;
export type ChatMessage = ChatCompletionRequest["messages"][number];

type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

export function parseChatCompletionRequest(value: unknown): ParseResult<ChatCompletionRequest> {
  const parsed = ChatCompletionRequestSchema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, message: firstIssue(parsed.error, "body") };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function messageText(message: ChatMessage): string {
  if (typeof message.content === "string") return message.content;
  if (message.content === null) return "";
  // Content parts: only {type: "text", text} carries text.
  return message.content
    .map((part) => (isPlainObject(part) && typeof part.text === "string" ? part.text : ""))
    .join(" ");
}

/** Rough prompt size: one token per word, at least one per message. */
function countPromptTokens(messages: readonly ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + Math.max(1, messageText(m).split(/\s+/).filter(Boolean).length), 0);
}

const VOCABULARY = [
  "the", "edge", "routes", "every", "request", "to", "a", "nearby", "node", "that", "is", "healthy",
  "and", "allowed", "tokens", "flow", "from", "GPU", "memory", "through", "fibre", "across", "regions",
  "latency", "stays", "low", "while", "load", "spreads", "evenly", "over", "the", "fleet", "of",
  "accelerators", "hotspots", "answer", "quickly", "when", "traffic", "grows", "meridian", "keeps",
  "sessions", "close", "to", "their", "users", "so", "answers", "arrive", "sooner",
];

/** Deterministic-ish words: same node and prompt give the same answer. */
function simulatedWords(nodeId: string, messages: readonly ChatMessage[], count: number): string[] {
  const lastMessage = messages[messages.length - 1];
  const random = seededRandom(hashString(`${nodeId}\n${lastMessage ? messageText(lastMessage) : ""}`));
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    const word = VOCABULARY[Math.floor(random() * VOCABULARY.length)] ?? "token";
    words.push(i === 0 ? word : ` ${word}`);
  }
  return words;
}

// ---- HTTP helpers -----------------------------------------------------------------------

type BodyResult = { kind: "ok"; text: string } | { kind: "too_large" } | { kind: "aborted" };

/** Reads a request body up to `limit` bytes; stops reading (without consuming the rest) past it. */
function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ kind: "too_large" });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: BodyResult): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAbort);
      req.off("close", onAbort);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish({ kind: "too_large" });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish({ kind: "ok", text: Buffer.concat(chunks).toString("utf8") });
    const onAbort = (): void => finish({ kind: "aborted" });
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onAbort);
    req.once("close", onAbort);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** The one error shape of every HTTP error answer: `{ error: { code, message } }`. */
export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: { code, message } });
}

/** Splits a request target into pathname and query; undefined when it is not a valid path. */
export function parseTarget(target: string | undefined): { pathname: string; query: URLSearchParams } | undefined {
  if (target === undefined || !target.startsWith("/")) return undefined;
  try {
    const url = new URL(target, "http://node.invalid");
    return { pathname: url.pathname, query: url.searchParams };
  } catch {
    return undefined;
  }
}

/** An HTTP server serving a single node's workload at its root. */
export function createWorkloadServer(workload: NodeWorkload): Server {
  return createServer((req, res) => {
    const target = parseTarget(req.url);
    if (target === undefined) {
      res.setHeader("x-served-by", workload.identity.id);
      sendError(res, 400, "invalid_request", "malformed request target");
      return;
    }
    workload.handle(req, res, target.pathname, target.query);
  });
}

/** Listens and resolves with the bound port (useful with port 0). */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address: AddressInfo | string | null = server.address();
      if (address === null || typeof address === "string") reject(new Error(`server on ${host} has no TCP port`));
      else resolve(address.port);
    });
  });
}

/** Stops accepting connections; open requests may finish, idle keep-alive sockets close now. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** The URL where a server bound to `host:port` can be reached (wildcard hosts become loopback). */
export function reachableUrl(host: string, port: number): string {
  const reachableHost = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "::1" : host;
  const hostPart = reachableHost.includes(":") ? `[${reachableHost}]` : reachableHost;
  return `http://${hostPart}:${port}`;
}
