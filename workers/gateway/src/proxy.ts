import type { Candidate } from "@meridian/routing";
import { HttpError } from "./errors";

/** Request bodies up to this size are buffered, so a failed attempt can be replayed. */
export const REPLAYABLE_BODY_BYTES = 256 * 1024;
/** Largest request body the gateway forwards at all. */
export const MAX_REQUEST_BODY_BYTES = 64 * 1024 * 1024;

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
/** Hop-by-hop and gateway-only headers that must not reach the node. */
const STRIPPED = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "x-client-lat",
  "x-client-lon",
  "x-client-country",
  "x-client-subdivision",
]);

export interface ProxyOutcome {
  response: Response;
  node: Candidate["node"];
  attempt: number;
}

/**
 * Forwards the request to the first candidate; on a connect error (any method, if the body
 * could be replayed) or a 5xx of an idempotent request it tries the next candidate once.
 * Response bodies are passed through as streams: SSE token streams arrive as they are made.
 */
/**
 * How long an idempotent request waits for the node's response headers before it counts as
 * failed and moves to the next candidate. Non-idempotent requests (a long non-streaming
 * completion may legitimately take a minute before its headers) are never timed out here.
 */
export const DEFAULT_HEADERS_TIMEOUT_MS = 5000;

/** Told about every attempt: null when the node answered below 500, else what went wrong. */
export type AttemptObserver = (node: Candidate["node"], failure: string | null) => void;

export async function proxyToCandidates(
  request: Request,
  path: string,
  candidates: readonly Candidate[],
  observe: AttemptObserver = () => {},
  headersTimeoutMs = DEFAULT_HEADERS_TIMEOUT_MS,
): Promise<ProxyOutcome> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (Number.isFinite(declared) && declared > MAX_REQUEST_BODY_BYTES) {
    throw new HttpError(413, "body_too_large", `request bodies are limited to ${MAX_REQUEST_BODY_BYTES} bytes`);
  }
  const hasBody = request.body !== null && request.method !== "GET" && request.method !== "HEAD";
  const replayable = !hasBody || (request.headers.has("content-length") && declared <= REPLAYABLE_BODY_BYTES);
  const body: ArrayBuffer | ReadableStream | null = !hasBody ? null : replayable ? await request.arrayBuffer() : request.body;
  // One pass over the incoming headers (names arrive lowercased) rather than a copy and a delete per stripped name.
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) if (!STRIPPED.has(name)) headers[name] = value;
  headers["x-forwarded-proto"] = request.url.startsWith("https:") ? "https" : "http";

  const attempts = Math.min(candidates.length, replayable ? 2 : 1);
  let lastError = "no candidate";
  for (let attempt = 0; attempt < attempts; attempt++) {
    const candidate = candidates[attempt];
    if (candidate === undefined) break;
    const target = `${candidate.node.endpoint}${path}`;
    const timeout = IDEMPOTENT.has(request.method) ? new AbortController() : null;
    const timer = timeout === null ? null : setTimeout(() => timeout.abort(new Error(`no response headers in ${headersTimeoutMs} ms`)), headersTimeoutMs);
    try {
      const response = await fetch(target, { method: request.method, headers, body, redirect: "manual", ...(timeout ? { signal: timeout.signal } : {}) });
      if (timer !== null) clearTimeout(timer);
      observe(candidate.node, response.status >= 500 ? `answered ${response.status}` : null);
      const retryable = response.status >= 500 && IDEMPOTENT.has(request.method) && attempt + 1 < attempts;
      if (retryable) {
        lastError = `${candidate.node.id} answered ${response.status}`;
        await response.body?.cancel();
        continue;
      }
      return { response, node: candidate.node, attempt };
    } catch (err) {
      if (timer !== null) clearTimeout(timer);
      lastError = `${candidate.node.id}: ${String(err)}`;
      observe(candidate.node, `connect failed: ${String(err)}`);
      console.warn(JSON.stringify({ at: "proxy.connect", node: candidate.node.id, target, error: String(err) }));
    }
  }
  throw new HttpError(502, "upstream_failed", `no node could be reached (${lastError})`);
}
