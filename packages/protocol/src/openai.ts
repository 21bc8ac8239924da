/**
 * The OpenAI-compatible surface as Meridian speaks it: which paths carry a model in their
 * JSON body, the steering a client may ask for, and OpenAI's error shape. Pure: the gateway
 * renders with it, the node agent answers with it, tests check against it.
 */

/** POST paths whose JSON body names a `model` (and may name `user`, `prompt_cache_key`, `stream`). */
export const OPENAI_BODY_PATHS: ReadonlySet<string> = new Set(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]);

/** Paths that mean a GPU node unless x-meridian-kind says otherwise. */
export function impliesGpu(pathname: string): boolean {
  return OPENAI_BODY_PATHS.has(pathname) || pathname === "/v1/models" || pathname.startsWith("/v1/models/");
}

/** x-meridian-steer: what the ranking optimises. */
export const STEERINGS = ["latency", "cost", "balanced"] as const;
export type Steering = (typeof STEERINGS)[number];
export function isSteering(value: string): value is Steering {
  return (STEERINGS as readonly string[]).includes(value);
}

/** OpenAI's error `type` for an HTTP status (what SDKs show beside the status and code). */
export function openAiErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403 || status === 451) return "permission_error";
  if (status === 404) return "invalid_request_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string; param: string | null } & Record<string, unknown>;
}

/**
 * `{ error: { message, type, code, param } }` as OpenAI answers, with Meridian's own fields
 * (rule, rules, policyVersion, requestId...) inside the same object so SDKs surface them too.
 * `param` names the request field at fault, or null.
 */
export function openAiErrorBody(status: number, code: string, message: string, extra: Record<string, unknown> = {}, param: string | null = null): OpenAiErrorBody {
  return { error: { message, type: openAiErrorType(status), code, param, ...extra } };
}
