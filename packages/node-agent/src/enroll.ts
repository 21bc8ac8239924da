import { setTimeout as sleep } from "node:timers/promises";
import { ApiErrorSchema, EnrollmentSchema, issuesText, type Enrollment } from "@meridian/protocol";
import { describeError } from "./log";

/** Enrollment as sent: the credential lifetime may be left to the gateway's default. */
export type EnrollmentRequest = Omit<Enrollment, "ttlDays"> & { ttlDays?: number };

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
  // Catch a bad region or GPU spec here, with a clear message, rather than as a 400.
  const checked = EnrollmentSchema.safeParse(enrollment);
  if (!checked.success) {
    throw new EnrollmentError(`invalid enrollment for ${enrollment.id}: ${issuesText(checked.error, "enrollment")}`, 0, "invalid_enrollment");
  }
  const url = adminNodesUrl(gatewayUrl);
  const attempts = Math.max(1, options.attempts ?? 3);
  const timeoutMs = options.timeoutMs ?? 15_000;

  for (let attempt = 1; ; attempt++) {
    try {
      return await enrollOnce(url, adminToken, enrollment, timeoutMs);
    } catch (error) {
      const retryable = !(error instanceof EnrollmentError) || error.status === 429 || error.status >= 500;
      if (!retryable || attempt >= attempts) {
        if (error instanceof EnrollmentError) throw error;
        throw new EnrollmentError(
          `enrolling ${enrollment.id} at ${url} failed: ${describeError(error)}`,
          0,
          "network_error",
        );
      }
      await sleep(250 * 2 ** attempt * (0.5 + Math.random() / 2));
    }
  }
}

async function enrollOnce(url: string, adminToken: string, enrollment: EnrollmentRequest, timeoutMs: number): Promise<string> {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(enrollment),
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
      `enrolling ${enrollment.id} failed with HTTP ${response.status} ${code}: ${detail}`,
      response.status,
      code,
    );
  }
  const credential = isRecord(body) ? body.credential : undefined;
  if (typeof credential !== "string" || credential.length === 0) {
    throw new EnrollmentError(`enrolling ${enrollment.id}: 201 answer has no credential`, response.status, "bad_answer");
  }
  return credential;
}

/** `{gateway}/admin/nodes`, keeping any base path of the gateway URL. */
export function adminNodesUrl(gatewayUrl: string): string {
  const url = new URL(gatewayUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`gateway URL must be http(s), got ${gatewayUrl}`);
  }
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/admin/nodes`;
  url.search = "";
  url.hash = "";
  return url.toString();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
