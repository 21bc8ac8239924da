import type { NodeRecord } from "@meridian/protocol";
import type { Candidate } from "@meridian/routing";
import { HttpError } from "./errors";

/** "/v1/x?y" of an absolute URL, without a full URL parse. */
export function pathAndQuery(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const hash = url.indexOf("#", start);
  return hash < 0 ? url.slice(start) : url.slice(start, hash);
}

/**
 * The body as readClientRequest left it. untouched: not read (not an OpenAI body path, or too
 * big to inspect): the proxy takes the request's own body. buffered: read whole, replayable on
 * failover. stream: read past the cap while looking (an upload without content-length): what
 * was read, then the rest, streaming.
 */
export type ReadBody = { kind: "untouched" } | { kind: "buffered"; bytes: Uint8Array } | { kind: "stream"; stream: ReadableStream<Uint8Array> };

/** Request bodies up to this size are buffered, so a failed attempt can be replayed. */
export const REPLAYABLE_BODY_BYTES = 256 * 1024;
/** Largest request body the gateway forwards at all. */
export const MAX_REQUEST_BODY_BYTES = 64 * 1024 * 1024;
/**
 * How long an idempotent request waits for the node's response headers before it counts as
 * failed and moves to the next candidate. Non-idempotent requests (a long non-streaming
 * completion may legitimately take a minute before its headers) are never timed out here.
 */
export const DEFAULT_HEADERS_TIMEOUT_MS = 5000;
/**
 * Streaming requests (an OpenAI body with "stream": true) whose node sends no first byte of
 * its answer within this long move to the next candidate, when the body can be replayed.
 * After the first byte there is no retry: the client has started receiving tokens.
 */
export const DEFAULT_TTFT_MS = 10_000;
/** Marks a request the gateway forwarded; a request arriving with our own mark is a loop. */
export const LOOP_HEADER = "x-meridian-loop";
/** Sent to the node only when the deployment opts in (FORWARD_CLIENT_COUNTRY=true). */
export const CLIENT_COUNTRY_HEADER = "x-meridian-client-country";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * What of the client's request never reaches a node: hop-by-hop headers, the client's
 * credentials for the gateway (keys, cookies), anything that identifies the client
 * (forwarding headers, Cloudflare's own), and the gateway's own x-meridian-* and dev headers.
 * Nodes are run by strangers: they get the request, not the client.
 */
const STRIPPED = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "authorization",
  "cookie",
  "forwarded",
  "via",
  "x-real-ip",
  "true-client-ip",
]);
const STRIPPED_PREFIXES = ["proxy-", "x-forwarded-", "cf-", "x-client-", "x-meridian-"];

function forwardable(name: string): boolean {
  if (STRIPPED.has(name)) return false;
  for (const prefix of STRIPPED_PREFIXES) if (name.startsWith(prefix)) return false;
  return true;
}

/** What the gateway adds to every forwarded request besides the client's own headers. */
export interface ForwardContext {
  requestId: string;
  /** The deployment's loop mark (LOOP_HEADER). */
  loopMark: string;
  /** The request-signature headers for one node. */
  sign: (node: NodeRecord, method: string, path: string) => Promise<Record<string, string>>;
  /** Set only when the deployment opted in: the client's country, nothing finer. */
  clientCountry?: string;
  headersTimeoutMs: number;
  /** The body as the gateway read it (see readClientRequest); "untouched" takes the request's own. */
  body?: ReadBody;
  /** Streaming requests: the first-byte deadline (ms from sending) before the next candidate is tried. */
  firstByteMs?: number;
}

export interface ProxyOutcome {
  response: Response;
  node: Candidate["node"];
  attempt: number;
}

/** Told about every attempt: null when the node answered below 500, else what went wrong. */
export type AttemptObserver = (node: Candidate["node"], failure: string | null) => void;

/**
 * Forwards the request to the first candidate; on a connect error (any method, if the body
 * could be replayed) or a 5xx of an idempotent request it tries the next candidate once.
 * Response bodies are passed through as streams: SSE token streams arrive as they are made.
 */
export async function proxyToCandidates(request: Request, path: string, candidates: readonly Candidate[], observe: AttemptObserver, forward: ForwardContext): Promise<ProxyOutcome> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (Number.isFinite(declared) && declared > MAX_REQUEST_BODY_BYTES) {
    throw new HttpError(413, "body_too_large", `request bodies are limited to ${MAX_REQUEST_BODY_BYTES} bytes`);
  }
  const read = forward.body ?? { kind: "untouched" };
  const hasBody = read.kind !== "untouched" || (request.body !== null && request.method !== "GET" && request.method !== "HEAD");
  const replayable = read.kind === "buffered" || !hasBody || (read.kind === "untouched" && request.headers.has("content-length") && declared <= REPLAYABLE_BODY_BYTES);
  const body: ArrayBuffer | Uint8Array | ReadableStream | null =
    read.kind === "buffered" ? read.bytes : read.kind === "stream" ? read.stream : !hasBody ? null : replayable ? await request.arrayBuffer() : request.body;
  // One pass over the incoming headers (names arrive lowercased).
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) if (forwardable(name)) headers[name] = value;
  headers["x-forwarded-proto"] = request.url.startsWith("https:") ? "https" : "http";
  headers["x-request-id"] = forward.requestId;
  headers[LOOP_HEADER] = forward.loopMark;
  if (forward.clientCountry !== undefined) headers[CLIENT_COUNTRY_HEADER] = forward.clientCountry;

  const attempts = Math.min(candidates.length, replayable ? 2 : 1);
  for (let attempt = 0; attempt < attempts; attempt++) {
    const candidate = candidates[attempt];
    if (candidate === undefined) break;
    const node = candidate.node;
    // A first-byte deadline only where another candidate can take over.
    const firstByteMs = forward.firstByteMs !== undefined && replayable && attempt + 1 < attempts ? forward.firstByteMs : undefined;
    const idempotent = IDEMPOTENT.has(request.method);
    const timeout = idempotent || firstByteMs !== undefined ? new AbortController() : null;
    const sentAt = Date.now();
    const timer =
      timeout === null
        ? null
        : idempotent
          ? setTimeout(() => timeout.abort(new Error(`no response headers in ${forward.headersTimeoutMs} ms`)), Math.min(forward.headersTimeoutMs, firstByteMs ?? Number.POSITIVE_INFINITY))
          : setTimeout(() => timeout.abort(new Error(`no first byte in ${firstByteMs} ms`)), firstByteMs ?? 0);
    try {
      const target = `${node.endpoint}${path}`;
      // Signed as the node receives it: an endpoint may carry a path of its own.
      const signed = { ...headers, ...(await forward.sign(node, request.method, pathAndQuery(target))) };
      const sent = await fetch(target, { method: request.method, headers: signed, body, redirect: "manual", ...(timeout ? { signal: timeout.signal } : {}) });
      if (timer !== null) clearTimeout(timer);
      const response = firstByteMs === undefined || sent.status >= 500 ? sent : await firstByteWithin(sent, firstByteMs - (Date.now() - sentAt));
      if (response === null) {
        observe(node, `no first byte in ${firstByteMs} ms`);
        console.warn(JSON.stringify({ at: "proxy.ttft", requestId: forward.requestId, node: node.id, attempt, deadlineMs: firstByteMs }));
        continue;
      }
      observe(node, response.status >= 500 ? `answered ${response.status}` : null);
      const retryable = response.status >= 500 && IDEMPOTENT.has(request.method) && attempt + 1 < attempts;
      if (retryable) {
        await response.body?.cancel();
        continue;
      }
      return { response, node, attempt };
    } catch (err) {
      if (timer !== null) clearTimeout(timer);
      observe(node, `connect failed: ${String(err)}`);
      // The details stay in the log, tied to the client's error by the request id.
      console.warn(JSON.stringify({ at: "proxy.connect", requestId: forward.requestId, node: node.id, attempt, error: String(err) }));
    }
  }
  throw new HttpError(502, "upstream_failed", "no node could serve this request; retry, or contact the operator with the request id");
}

/**
 * The response once its first body byte arrived within `ms`, its body intact (that chunk, then
 * the rest); null when the deadline passed first (the body is then cancelled).
 */
export async function firstByteWithin(response: Response, ms: number): Promise<Response | null> {
  if (response.body === null) return response;
  const reader = response.body.getReader();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), Math.max(0, ms));
  });
  const first = await Promise.race([reader.read(), late]).catch(() => "late" as const);
  if (timer !== null) clearTimeout(timer);
  if (first === "late") {
    await reader.cancel().catch(() => undefined);
    return null;
  }
  let pending: Uint8Array | undefined = first.done ? undefined : first.value;
  let ended = first.done;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending !== undefined) {
        controller.enqueue(pending);
        pending = undefined;
        return;
      }
      if (ended) return controller.close();
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        controller.close();
      } else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(body, response);
}
