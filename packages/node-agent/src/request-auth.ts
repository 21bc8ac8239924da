import {
  SIGNATURE_HEADER,
  SIGNATURE_TIMESTAMP_HEADER,
  importRequestKey,
  verifyRequestSignature,
  type SignatureCheck,
} from "@meridian/protocol";
import { errorResponse, type RequestContext } from "./http-bridge";
import { describeError, silentLogger, type Logger } from "./log";

/** WebCrypto's key type (named alike under Node's and Workers' type libraries). */
type RequestKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

export type SignatureErrorCode = "signature_required" | "signature_stale" | "signature_invalid";

export interface SignatureRefusal {
  code: SignatureErrorCode;
  message: string;
}

/** Why a failed check is refused, in the words of the 401 body. */
export function refusalFor(check: Exclude<SignatureCheck, { ok: true }>): SignatureRefusal {
  switch (check.reason) {
    case "missing":
      return { code: "signature_required", message: `requests to this node must come through the gateway (${SIGNATURE_HEADER} and ${SIGNATURE_TIMESTAMP_HEADER} missing)` };
    case "stale":
      return { code: "signature_stale", message: "the request's signature timestamp is more than 30 s away from the node's clock" };
    case "malformed":
      return { code: "signature_invalid", message: `malformed ${SIGNATURE_HEADER} or ${SIGNATURE_TIMESTAMP_HEADER}` };
    case "mismatch":
      return { code: "signature_invalid", message: "the signature does not match this node, method, path and time" };
  }
}

/**
 * Checks the gateway's signature on forwarded requests with the request key of the node's
 * latest welcome. Before any welcome there is no key, and every request is refused.
 */
export class RequestVerifier {
  readonly nodeId: string;
  private readonly logger: Logger;
  private key: Promise<RequestKey | undefined> | undefined;

  constructor(nodeId: string, logger: Logger = silentLogger) {
    this.nodeId = nodeId;
    this.logger = logger;
  }

  /** Takes the key of a new welcome; requests are checked against it from now on. */
  useKey(requestKey: string): void {
    this.key = importRequestKey(requestKey).catch((error: unknown) => {
      this.logger.error(`the welcome's request key is unusable, refusing every request: ${describeError(error)}`);
      return undefined;
    });
  }

  /** Undefined when the request is signed for this node, now; else why not. */
  async check(method: string, target: string, headers: Headers, nowMs: number): Promise<SignatureRefusal | undefined> {
    const signature = headers.get(SIGNATURE_HEADER);
    const timestamp = headers.get(SIGNATURE_TIMESTAMP_HEADER);
    const key = await this.key;
    if (key === undefined) {
      if (!signature || !timestamp) return refusalFor({ ok: false, reason: "missing" });
      return { code: "signature_invalid", message: "the node has no request key yet: the gateway has not welcomed it" };
    }
    const check = await verifyRequestSignature(key, method, target, this.nodeId, { signature, timestamp }, nowMs);
    return check.ok ? undefined : refusalFor(check);
  }

  /** The check as router middleware: a 401 before any workload work, or nothing (go on). */
  middleware(): (request: Request, context: RequestContext) => Promise<Response | undefined> {
    return async (request, context) => {
      const refusal = await this.check(request.method, context.target, request.headers, Date.now());
      return refusal === undefined ? undefined : errorResponse(401, refusal.code, refusal.message);
    };
  }
}
