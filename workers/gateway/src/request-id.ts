import type { Context } from "hono";
import { createMiddleware } from "hono/factory";

export const REQUEST_ID_HEADER = "x-request-id";

declare module "hono" {
  interface ContextVariableMap {
    /** Ties a response, its error body and every log line about it together. */
    requestId: string;
  }
}

/**
 * Gives every request an id: Cloudflare's ray id where there is one (operators find it in
 * Cloudflare's logs too), else a random one. Answers carry it in x-request-id, error bodies
 * in error.requestId, and log lines in requestId.
 */
export const requestId = createMiddleware(async (c, next) => {
  const id = c.req.header("cf-ray") ?? crypto.randomUUID();
  c.set("requestId", id);
  c.header(REQUEST_ID_HEADER, id);
  await next();
});

export function requestIdOf(c: Context): string {
  return c.get("requestId") ?? "none";
}
