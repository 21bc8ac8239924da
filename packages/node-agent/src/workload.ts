import { z } from "zod";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Router, type IRequest } from "itty-router";
import { DEFAULT_HOTSPOT_MBPS, firstIssue, openAiErrorBody, tierForMbps } from "@meridian/protocol";
import { SIMULATED_MODELS, type NodeIdentity } from "./fleet";
import { errorResponse, fetchListener, jsonResponse, type FetchHandler, type RequestContext } from "./http-bridge";
import { describeError, silentLogger, type Logger } from "./log";
import { hashString, seededRandom } from "./random";
import type { RequestVerifier } from "./request-auth";

export const MAX_CHAT_BODY_BYTES = 1024 * 1024;
export const MAX_DATA_BYTES = 1024 * 1024 * 1024;
export const DATA_CHUNK_BYTES = 64 * 1024;
export const MAX_TOKENS_LIMIT = 1024;
export const DEFAULT_TOKEN_MS = 15;
/** Without max_tokens an answer ends by itself ("stop") after this many tokens, drawn per prompt. */
export const NATURAL_ANSWER_TOKENS = { min: 9, max: 24 } as const;
/** Tokens per second are reported over this window. */
export const TOKEN_RATE_WINDOW_S = 5;

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

/** GPU nodes: requests waiting for a generation slot, and tokens per second lately. */
export interface GpuSignals {
  queue: number;
  tokensPerSecond: number;
}

/** What a connection needs from the workload: current load, and a way to wait for in-flight work. */
export interface LoadSource {
  snapshot(): LoadSnapshot;
  /** GPU nodes: queue depth and token rate, sent with each heartbeat. */
  gpuSignals?(): GpuSignals | undefined;
  /** Resolves true once nothing is in flight, false when the timeout passes first. */
  whenIdle(timeoutMs: number): Promise<boolean>;
}

export interface WorkloadOptions {
  /** Delay between two simulated tokens. */
  tokenMs?: number;
  logger?: Logger;
}

/**
 * The simulated work one node serves: identity, load, and the answers of its routes
 * (OpenAI-style chat on GPU nodes, bulk data on hotspots). Routing and the signature check
 * are createNodeHandler's; this class only does the work.
 */
export class NodeWorkload implements LoadSource {
  readonly identity: NodeIdentity;
  readonly tokenMs: number;
  /** Models served by a GPU node (the first answers requests that name none); empty for hotspots. */
  readonly servedModels: readonly string[];
  readonly logger: Logger;
  private readonly modelCreated = Math.floor(Date.now() / 1000);
  private inFlightCount = 0;
  /** Simulated radio/backbone conditions, reported in heartbeats (see setQuality, setCongestion). */
  private tier: number | undefined;
  private users = 0;
  private congestion = 0;
  private readonly idleWaiters = new Set<() => void>();
  /** Generations running (at most `capacity`) and requests waiting for one to end. */
  private generating = 0;
  private readonly waiting: Array<() => void> = [];
  /** Tokens emitted per whole second (epoch seconds), for the reported rate. */
  private readonly tokenSeconds = new Map<number, number>();

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
    this.servedModels = identity.gpu ? (identity.models !== undefined && identity.models.length > 0 ? [...identity.models] : [`meridian-${identity.gpu.class}`]) : [];
    if (identity.kind === "hotspot") this.tier = tierForMbps(identity.maxMbps ?? DEFAULT_HOTSPOT_MBPS);
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

  /** GPU nodes: queue depth and recent token rate, for heartbeats (undefined for other kinds). */
  gpuSignals(): GpuSignals | undefined {
    if (this.identity.kind !== "gpu") return undefined;
    return { queue: this.waiting.length, tokensPerSecond: this.tokenRate() };
  }

  /** Tokens per second over the last TOKEN_RATE_WINDOW_S whole seconds. */
  private tokenRate(): number {
    const now = Math.floor(Date.now() / 1000);
    let sum = 0;
    for (const [second, count] of this.tokenSeconds) {
      if (second < now - TOKEN_RATE_WINDOW_S) this.tokenSeconds.delete(second);
      else if (second < now) sum += count;
    }
    return Math.round((sum / TOKEN_RATE_WINDOW_S) * 10) / 10;
  }

  private countToken(): void {
    const second = Math.floor(Date.now() / 1000);
    this.tokenSeconds.set(second, (this.tokenSeconds.get(second) ?? 0) + 1);
  }

  /**
   * A generation slot: at most `capacity` requests generate at once, the rest queue in order
   * (the queue depth heartbeats report). Resolves false when the client left while waiting.
   */
  private async acquireSlot(clientGone: AbortSignal): Promise<boolean> {
    if (this.generating < this.identity.capacity && this.waiting.length === 0) {
      this.generating++;
      return true;
    }
    return new Promise((resolve) => {
      const onGone = (): void => {
        const at = this.waiting.indexOf(take);
        if (at >= 0) this.waiting.splice(at, 1);
        resolve(false);
      };
      const take = (): void => {
        clientGone.removeEventListener("abort", onGone);
        this.generating++;
        resolve(true);
      };
      if (clientGone.aborted) return resolve(false);
      clientGone.addEventListener("abort", onGone, { once: true });
      this.waiting.push(take);
    });
  }

  private releaseSlot(): void {
    this.generating--;
    const next = this.waiting.shift();
    if (next !== undefined) next();
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

  /** Counts one request in flight until `done` (its response finished or its client left). */
  track(done: Promise<void>): void {
    this.inFlightCount++;
    void done.then(() => {
      this.inFlightCount--;
      if (this.inFlightCount === 0) {
        const waiters = [...this.idleWaiters];
        this.idleWaiters.clear();
        for (const wake of waiters) wake();
      }
    });
  }

  whoami(): Response {
    const { id, region, kind } = this.identity;
    return jsonResponse(200, { node: id, region, kind });
  }

  models(): Response {
    return jsonResponse(200, {
      object: "list",
      data: this.servedModels.map((id) => ({ id, object: "model", created: this.modelCreated, owned_by: "meridian" })),
    });
  }

  async chatCompletions(request: Request, context: RequestContext): Promise<Response> {
    const body = await readBody(request, MAX_CHAT_BODY_BYTES);
    if (body.kind === "aborted") return errorResponse(400, "aborted", "the client went away while sending the body");
    if (body.kind === "too_large") {
      // The rest of the body is never read, so the connection cannot be reused.
      return errorResponse(413, "payload_too_large", `request body exceeds ${MAX_CHAT_BODY_BYTES} bytes`, { connection: "close" });
    }
    let json: unknown;
    try {
      json = JSON.parse(body.text);
    } catch (error) {
      return errorResponse(400, "invalid_json", `request body is not valid JSON: ${describeError(error)}`);
    }
    const parsed = parseChatCompletionRequest(json);
    if (!parsed.ok) return errorResponse(400, "invalid_request", parsed.message);
    const chat = parsed.value;
    const model = chat.model ?? this.servedModels[0];
    if (model === undefined || !this.servedModels.includes(model)) {
      return jsonResponse(404, openAiErrorBody(404, "model_not_found", `The model \`${chat.model ?? ""}\` is not served by node ${this.identity.id} (it serves ${this.servedModels.join(", ")})`, {}, "model"));
    }
    const natural = naturalLength(this.identity.id, chat.messages);
    const limit = Math.min(chat.max_tokens ?? MAX_TOKENS_LIMIT, MAX_TOKENS_LIMIT);
    const tokenCount = Math.min(natural, limit);
    // The answer ran into max_tokens before its natural end: "length"; else it ended: "stop".
    const finishReason = natural > limit ? "length" : "stop";
    const words = simulatedWords(this.identity.id, chat.messages, tokenCount);
    const promptTokens = countPromptTokens(chat.messages);
    const tokenMs = this.tokenMs * modelTokenCost(model);
    const completion = {
      id: `chatcmpl-${randomBytes(12).toString("hex")}`,
      created: Math.floor(Date.now() / 1000),
      model,
    };
    // Generation stops as soon as the client goes away.
    const clientGone = context.clientGone;
    // Waits in the queue for a generation slot, as a GPU server batching requests does.
    if (!(await this.acquireSlot(clientGone))) return errorResponse(400, "aborted", "the client went away while queued");
    const countToken = (): void => this.countToken();

    if (chat.stream !== true) {
      try {
        for (let t = 0; t < tokenCount; t++) {
          if (!(await pause(tokenMs, clientGone))) return errorResponse(400, "aborted", "the client went away");
          countToken();
        }
      } finally {
        this.releaseSlot();
      }
      return jsonResponse(200, {
        ...completion,
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content: words.join("") }, finish_reason: finishReason }],
        usage: usageOf(promptTokens, tokenCount),
      });
    }
    const includeUsage = chat.stream_options?.include_usage === true;
    const release = (): void => this.releaseSlot();
    const chunk = (delta: { role?: string; content?: string }, reason: string | null): string =>
      `data: ${JSON.stringify({ ...completion, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: reason }], ...(includeUsage ? { usage: null } : {}) })}\n\n`;
    async function* events(): AsyncGenerator<string> {
      try {
        yield chunk({ role: "assistant", content: "" }, null);
        for (const word of words) {
          if (!(await pause(tokenMs, clientGone))) return;
          countToken();
          yield chunk({ content: word }, null);
        }
        yield chunk({}, finishReason);
        // OpenAI's usage chunk: no choices, the whole request's usage.
        if (includeUsage) yield `data: ${JSON.stringify({ ...completion, object: "chat.completion.chunk", choices: [], usage: usageOf(promptTokens, tokenCount) })}\n\n`;
        yield "data: [DONE]\n\n";
      } finally {
        release();
      }
    }
    return new Response(streamOf(events()), {
      status: 200,
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" },
    });
  }

  data(query: URLSearchParams, context: RequestContext): Response {
    const raw = query.get("bytes");
    const bytes = raw !== null && /^\d{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(bytes >= 0 && bytes <= MAX_DATA_BYTES)) {
      return errorResponse(400, "invalid_request", `query parameter bytes must be an integer in 0..${MAX_DATA_BYTES}`);
    }
    // Optional pacing, like a radio link: chunkBytes per write and pauseMs between writes.
    const chunkBytes = boundedInt(query.get("chunkBytes"), 1, DATA_CHUNK_BYTES) ?? DATA_CHUNK_BYTES;
    const pauseMs = boundedInt(query.get("pauseMs"), 0, 10_000) ?? 0;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let remaining = bytes;
      while (remaining > 0) {
        const size = Math.min(chunkBytes, remaining);
        yield size === DATA_CHUNK_BYTES ? DATA_CHUNK : DATA_CHUNK.subarray(0, size);
        remaining -= size;
        if (pauseMs > 0 && remaining > 0 && !(await pause(pauseMs, context.clientGone))) return;
      }
    }
    return new Response(bytes === 0 ? null : streamOf(chunks()), {
      status: 200,
      headers: { "content-type": "application/octet-stream", "content-length": String(bytes) },
    });
  }
}

export interface NodeHandlerOptions {
  /** Refuses requests the gateway did not sign for this node. */
  verifier: RequestVerifier;
  /** Path prefix of the node's endpoint on a shared server (the simulator's "/n/<id>"). */
  base?: string;
}

/**
 * The node's HTTP dispatch as a fetch handler: the signature check first (nothing else runs for
 * a refused request), then in-flight accounting, then the routes of the node's kind.
 */
export function createNodeHandler(workload: NodeWorkload, { verifier, base = "" }: NodeHandlerOptions): FetchHandler {
  const { id, kind } = workload.identity;
  const countInFlight = (_request: IRequest, context: RequestContext): undefined => {
    workload.track(context.done);
    return undefined;
  };
  const servedBy = (response: Response | undefined): Response => {
    const answer = response ?? errorResponse(500, "internal_error", "no route answered");
    answer.headers.set("x-served-by", id);
    return answer;
  };
  const methodNotAllowed = (allowed: string) => (request: IRequest) =>
    errorResponse(405, "method_not_allowed", `${below(request)} accepts ${allowed}, not ${request.method}`, { allow: allowed });
  const below = (request: IRequest): string => new URL(request.url).pathname.slice(base.length) || "/";

  const router = Router<IRequest, [RequestContext], Response>({
    base,
    before: [verifier.middleware(), countInFlight],
    finally: [servedBy],
  });
  router.get("/v1/whoami", () => workload.whoami());
  if (kind === "gpu") {
    router.get("/v1/models", () => workload.models());
    router.post("/v1/chat/completions", (request: IRequest, context: RequestContext) => workload.chatCompletions(request, context));
    router.all("/v1/chat/completions", methodNotAllowed("POST"));
  } else {
    router.get("/v1/data", (request: IRequest, context: RequestContext) => workload.data(new URL(request.url).searchParams, context));
    router.all("/v1/data", methodNotAllowed("GET"));
  }
  router.all("*", (request: IRequest) => errorResponse(404, "not_found", `${kind} node ${id} has no route ${below(request)}`));
  return (request, context) => router.fetch(request, context);
}

/** An HTTP server serving a single node's workload at its root, signed requests only. */
export function createWorkloadServer(workload: NodeWorkload, verifier: RequestVerifier): Server {
  const handler = createNodeHandler(workload, { verifier });
  return createServer(fetchListener(handler, (error, req) => workload.logger.error(`${req.method ?? "?"} ${req.url ?? "?"} failed: ${describeError(error)}`)));
}

/** An integer query parameter within [min, max]; undefined when absent or out of range. */
function boundedInt(raw: string | null, min: number, max: number): number | undefined {
  if (raw === null || !/^\d{1,6}$/.test(raw)) return undefined;
  const value = Number(raw);
  return value >= min && value <= max ? value : undefined;
}

/** Repeating byte pattern (0..250), reused for every chunk: never mutated while queued. */
const DATA_CHUNK = new Uint8Array(Array.from({ length: DATA_CHUNK_BYTES }, (_, i) => i % 251));

/** A pull stream over an async generator: the next chunk is made only when the client takes one. */
function streamOf(chunks: AsyncGenerator<string | Uint8Array>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await chunks.next();
        if (done) controller.close();
        else controller.enqueue(typeof value === "string" ? encoder.encode(value) : value);
      },
      async cancel() {
        await chunks.return(undefined);
      },
    },
    { highWaterMark: 0 },
  );
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

type BodyResult = { kind: "ok"; text: string } | { kind: "too_large" } | { kind: "aborted" };

/** Reads a request body up to `limit` bytes; stops reading (without consuming the rest) past it. */
async function readBody(request: Request, limit: number): Promise<BodyResult> {
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) return { kind: "too_large" };
  if (request.body === null) return { kind: "ok", text: "" };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) return { kind: "too_large" };
      chunks.push(value);
    }
  } catch {
    return { kind: "aborted" };
  }
  return { kind: "ok", text: Buffer.concat(chunks).toString("utf8") };
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
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
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

/** The one place usage is computed: both answer forms (and any usage record) take it from here. */
export function usageOf(promptTokens: number, completionTokens: number): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** Time per token of a model relative to the node's base (unknown models: 1). */
function modelTokenCost(model: string): number {
  return SIMULATED_MODELS.find((m) => m.id === model)?.tokenCost ?? 1;
}

/** How long the simulated answer is when nothing cuts it short: same node and prompt, same length. */
function naturalLength(nodeId: string, messages: readonly ChatMessage[]): number {
  const lastMessage = messages[messages.length - 1];
  const random = seededRandom(hashString(`length:${nodeId}\n${lastMessage ? messageText(lastMessage) : ""}`));
  return NATURAL_ANSWER_TOKENS.min + Math.floor(random() * (NATURAL_ANSWER_TOKENS.max - NATURAL_ANSWER_TOKENS.min + 1));
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
