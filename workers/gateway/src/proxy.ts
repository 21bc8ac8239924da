import type { NodeRecord } from "@meridian/protocol";
import type { Candidate } from "@meridian/routing";
import { pathAndQuery } from "./client";
import { HttpError } from "./errors";

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
  const hasBody = request.body !== null && request.method !== "GET" && request.method !== "HEAD";
  const replayable = !hasBody || (request.headers.has("content-length") && declared <= REPLAYABLE_BODY_BYTES);
  const body: ArrayBuffer | ReadableStream | null = !hasBody ? null : replayable ? await request.arrayBuffer() : request.body;
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
    const timeout = IDEMPOTENT.has(request.method) ? new AbortController() : null;
    const timer = timeout === null ? null : setTimeout(() => timeout.abort(new Error(`no response headers in ${forward.headersTimeoutMs} ms`)), forward.headersTimeoutMs);
    try {
      const target = `${node.endpoint}${path}`;
      // Signed as the node receives it: an endpoint may carry a path of its own.
      const signed = { ...headers, ...(await forward.sign(node, request.method, pathAndQuery(target))) };
      const response = await fetch(target, { method: request.method, headers: signed, body, redirect: "manual", ...(timeout ? { signal: timeout.signal } : {}) });
      if (timer !== null) clearTimeout(timer);
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
