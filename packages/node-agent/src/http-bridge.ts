/**
 * A small node:http <-> fetch bridge: the workload is written against standard Request and
 * Response (routed by itty-router), node:http serves it. Bodies stream both ways with
 * backpressure; a client that goes away cancels the response body and aborts `clientGone`.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";

/** What a handler knows besides the Request. */
export interface RequestContext {
  /** Path and query exactly as received (what the gateway signed), e.g. "/v1/data?bytes=10". */
  target: string;
  /** Aborted when the client goes away before the response is complete. */
  clientGone: AbortSignal;
  /** Resolves once the response is finished or the client went away. */
  done: Promise<void>;
}

export type FetchHandler = (request: Request, context: RequestContext) => Promise<Response>;

/** JSON bodies up to this size are written in one go instead of streamed chunk by chunk. */
const INLINE_BODY_BYTES = 64 * 1024;
/** A stand-in origin: node handlers route on the path, the Host header is not trusted. */
const ORIGIN = "http://node.invalid";

/** Serves `handler` on a node:http server; `onError` hears of handlers that threw. */
export function fetchListener(handler: FetchHandler, onError: (error: unknown, req: IncomingMessage) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const clientGone = new AbortController();
    const done = new Promise<void>((resolve) => {
      res.once("close", () => {
        if (!res.writableFinished) clientGone.abort();
        resolve();
      });
    });
    const target = req.url ?? "";
    const request = toRequest(req, target);
    if (request === undefined) {
      void writeResponse(res, jsonResponse(400, { error: { code: "invalid_request", message: "malformed request target" } }));
      return;
    }
    handler(request, { target, clientGone: clientGone.signal, done })
      .then((response) => writeResponse(res, response))
      .catch((error: unknown) => {
        onError(error, req);
        if (res.headersSent) res.destroy();
        else void writeResponse(res, jsonResponse(500, { error: { code: "internal_error", message: "the node failed to serve the request" } }));
      });
  };
}

/** The fetch Request for an incoming request; undefined when the target is not a path. */
export function toRequest(req: IncomingMessage, target: string): Request | undefined {
  if (!target.startsWith("/")) return undefined;
  let url: URL;
  try {
    url = new URL(target, ORIGIN);
  } catch {
    return undefined;
  }
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    const value = req.rawHeaders[i + 1];
    if (name === undefined || value === undefined || name.startsWith(":")) continue;
    try {
      headers.append(name, value);
    } catch {
      // A header fetch cannot represent; node:http already accepted the request, so skip it.
    }
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  return new Request(url, {
    method,
    headers,
    ...(hasBody ? { body: bodyStream(req), duplex: "half" } : {}),
  });
}

/**
 * The request body as a pull stream: nothing is read until the handler reads, so a handler can
 * refuse a body (413) without consuming it. Cancelling leaves the socket alone.
 */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  const chunks = req[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await chunks.next();
        if (done) controller.close();
        else if (value instanceof Uint8Array) controller.enqueue(value);
        else controller.enqueue(new TextEncoder().encode(String(value)));
      },
      cancel() {
        req.pause();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Writes a fetch Response to node:http, streaming its body with backpressure. */
export async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const body = response.body;
  if (res.destroyed) {
    await body?.cancel().catch(() => undefined);
    return;
  }
  const headers: OutgoingHttpHeaders = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const setCookies = response.headers.getSetCookie();
  if (setCookies.length > 0) headers["set-cookie"] = setCookies;
  res.writeHead(response.status, headers);
  if (body === null) {
    res.end();
    return;
  }
  // A small JSON value is complete when made: one write. Anything else (SSE, paced bytes) streams.
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared <= INLINE_BODY_BYTES && response.headers.get("content-type")?.startsWith("application/json")) {
    res.end(Buffer.from(await response.arrayBuffer()));
    return;
  }
  res.flushHeaders();
  const reader = body.getReader();
  const cancel = (): void => {
    reader.cancel().catch(() => undefined);
  };
  res.once("close", cancel);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) await drainedOrClosed(res);
    }
    if (!res.destroyed) res.end();
  } catch {
    res.destroy();
  } finally {
    res.off("close", cancel);
  }
}

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

/** A JSON response with its length, so the bridge writes it in one go. */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  const text = JSON.stringify(body);
  return new Response(text, {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)), ...headers },
  });
}

/** The one error shape of every HTTP error answer: `{ error: { code, message } }`. */
export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return jsonResponse(status, { error: { code, message } }, headers);
}
