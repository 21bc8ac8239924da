import { setTimeout as sleep } from "node:timers/promises";
import { ApiErrorSchema, EnrollmentSchema, issuesText, type Enrollment } from "@meridian/protocol";
import { describeError } from "./log";

/** Enrollment as sent: the credential lifetime may be left to the gateway's default. */
export type EnrollmentRequest = Omit<Enrollment, "ttlDays"> & { ttlDays?: number };

/** A join as sent: the enrollment fields without ttlDays (the token decides), plus the endpoint. */
export type JoinRequest = Omit<Enrollment, "ttlDays"> & { endpoint?: string };

export interface EnrollOptions {
  /** Attempts for network errors, 429 and 5xx (4xx other than 429 never retry). */
  attempts?: number;
  timeoutMs?: number;
}

/** A refused or failed enrollment; `status` is 0 when no HTTP answer arrived. */
export class EnrollmentError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(message: string, status: number, code: string) {
    super(message);
    this.name = "EnrollmentError";
    this.status = status;
    this.code = code;
  }
}

/** Registers a node with the gateway (admin API) and returns its bearer credential. */
export async function enrollNode(
  gatewayUrl: string,
  adminToken: string,
  enrollment: EnrollmentRequest,
  options: EnrollOptions = {},
): Promise<string> {
  checkEnrollment(enrollment);
  return requestCredential(adminNodesUrl(gatewayUrl), adminToken, enrollment, enrollment.id, options, () => "");
}

/**
 * Enrolls a node with a join token an admin created (`POST /nodes/join`), so the operator never
 * holds an admin token, and returns its bearer credential.
 */
export async function joinWithToken(gatewayUrl: string, joinToken: string, request: JoinRequest, options: EnrollOptions = {}): Promise<string> {
  const { endpoint: _endpoint, ...enrollment } = request;
  checkEnrollment(enrollment);
  return requestCredential(gatewayPath(gatewayUrl, "/nodes/join"), joinToken, request, request.id, options, joinRefusalHint);
}

/** What an operator should do about a refused join, by status. */
export function joinRefusalHint(status: number): string {
  switch (status) {
    case 401:
      return " (the join token is invalid, used up or expired: ask the fleet admin for a new one)";
    case 403:
      return " (the node is outside what the join token allows: check --region, --kind and the hardware flags)";
    case 409:
      return " (this node id is already enrolled: pick another --id, or ask an admin to move or revoke it)";
    default:
      return "";
  }
}

/** Catches a bad region or GPU spec here, with a clear message, rather than as a 400. */
function checkEnrollment(enrollment: EnrollmentRequest): void {
  const checked = EnrollmentSchema.safeParse(enrollment);
  if (!checked.success) {
    throw new EnrollmentError(`invalid enrollment for ${enrollment.id}: ${issuesText(checked.error, "enrollment")}`, 0, "invalid_enrollment");
  }
}

async function requestCredential(
  url: string,
  bearer: string,
  body: unknown,
  nodeId: string,
  options: EnrollOptions,
  hint: (status: number) => string,
): Promise<string> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const timeoutMs = options.timeoutMs ?? 15_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await requestOnce(url, bearer, body, nodeId, timeoutMs, hint);
    } catch (error) {
      const retryable = !(error instanceof EnrollmentError) || error.status === 429 || error.status >= 500;
      if (!retryable || attempt >= attempts) {
        if (error instanceof EnrollmentError) throw error;
        throw new EnrollmentError(`enrolling ${nodeId} at ${url} failed: ${describeError(error)}`, 0, "network_error");
      }
      await sleep(250 * 2 ** attempt * (0.5 + Math.random() / 2));
    }
  }
}

async function requestOnce(
  url: string,
  bearer: string,
  payload: unknown,
  nodeId: string,
  timeoutMs: number,
  hint: (status: number) => string,
): Promise<string> {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (response.status !== 201) {
    const apiError = ApiErrorSchema.safeParse(body);
    const code = apiError.success ? apiError.data.error.code : `http_${response.status}`;
    const detail = apiError.success ? apiError.data.error.message : text.slice(0, 300) || response.statusText;
    throw new EnrollmentError(
      `enrolling ${nodeId} failed with HTTP ${response.status} ${code}: ${detail}${hint(response.status)}`,
      response.status,
      code,
    );
  }
  const credential = isRecord(body) ? body.credential : undefined;
  if (typeof credential !== "string" || credential.length === 0) {
    throw new EnrollmentError(`enrolling ${nodeId}: 201 answer has no credential`, response.status, "bad_answer");
  }
  return credential;
}

/** `{gateway}/admin/nodes`, keeping any base path of the gateway URL. */
export function adminNodesUrl(gatewayUrl: string): string {
  return gatewayPath(gatewayUrl, "/admin/nodes");
}

/** `{gateway}{path}`, keeping any base path of the gateway URL. */
export function gatewayPath(gatewayUrl: string, path: string): string {
  const url = new URL(gatewayUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`gateway URL must be http(s), got ${gatewayUrl}`);
  }
  url.pathname = `${url.pathname.replace(/\/+$/, "")}${path}`;
  url.search = "";
  url.hash = "";
  return url.toString();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
