import { openAiErrorBody } from "@meridian/protocol";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { requestIdOf } from "./request-id";

/** An error that becomes `{ error: { code, message, ...extra } }` with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message, ...extra } };
}

/**
 * The error body for a path: on the OpenAI surface (/v1/*) OpenAI's shape, `{ error: { message,
 * type, code, param } }`, with Meridian's fields (rule, rules, policyVersion, requestId...) in
 * the same object so SDKs show them; elsewhere Meridian's `{ error: { code, message, ... } }`.
 * `extra.param` (a request field at fault) becomes OpenAI's `param`.
 */
export function errorBodyFor(path: string, status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  if (!isOpenAiPath(path)) return errorBody(code, message, extra);
  const { param, ...rest } = extra;
  return openAiErrorBody(status, code, message, rest, typeof param === "string" ? param : null);
}

export const isOpenAiPath = (path: string) => path.startsWith("/v1/");

/** The single place HTTP errors are rendered (app.onError); every body names the request id. */
export function renderError(err: Error, c: Context): Response {
  const requestId = requestIdOf(c);
  const path = c.req.path;
  if (err instanceof HttpError) {
    for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
    if (err.status >= 500) console.warn(JSON.stringify({ at: "gateway.error", requestId, status: err.status, code: err.code, path }));
    return c.json(errorBodyFor(path, err.status, err.code, err.message, { ...err.extra, requestId }), err.status);
  }
  // hono's own errors, e.g. a malformed JSON body seen by the validator.
  if (err instanceof HTTPException) {
    const code = err.status === 400 ? "invalid_json" : `http_${err.status}`;
    return c.json(errorBodyFor(path, err.status, code, err.message, { requestId }), err.status);
  }
  console.error(JSON.stringify({ at: "gateway", requestId, method: c.req.method, path, error: String(err), stack: err.stack }));
  return c.json(errorBodyFor(path, 500, "internal_error", "the gateway failed to handle this request", { requestId }), 500);
}

export function notFound(c: Context): Response {
  return c.json(errorBodyFor(c.req.path, 404, "not_found", `no route for ${c.req.method} ${c.req.path}`, { requestId: requestIdOf(c) }), 404);
}

/** "path: message" of a zod error's first issue (`fallbackPath` names a root-level issue). */
export function formatIssue(error: z.ZodError, fallbackPath = "value"): string {
  const issue = error.issues[0];
  return issue === undefined ? "invalid" : `${issue.path.join(".") || fallbackPath}: ${issue.message}`;
}
