import { HttpError } from "../errors";
import type { AuthenticatedTenant } from "./authenticate";
import { tenantLimiter } from "./durable";
import { LEASE_TTL_MS, type LimitVerdict } from "./limiter";

/** A concurrency slot held for one request; released when its response ends. */
export interface Slot {
  headers: Record<string, string>;
  release(): void;
  /** Renews the lease while `until` is pending (a long stream keeps its slot), then releases. */
  holdUntil(until: Promise<unknown>): Promise<void>;
}

export function rateLimitHeaders(v: Pick<LimitVerdict, "limit" | "remaining" | "resetS">): Record<string, string> {
  return { "x-ratelimit-limit": String(v.limit), "x-ratelimit-remaining": String(v.remaining), "x-ratelimit-reset": String(v.resetS) };
}

/**
 * Takes a slot from the tenant's limiter (one Durable Object per tenant, so the limits hold
 * across isolates) or throws 429 with Retry-After and the x-ratelimit-* headers. If the
 * limiter cannot be reached the request is refused (503): limits fail closed.
 */
export async function acquireSlot(env: Env, tenant: AuthenticatedTenant, waitUntil: (p: Promise<unknown>) => void): Promise<Slot> {
  let verdict: LimitVerdict;
  try {
    verdict = await tenantLimiter(env, tenant.id).acquire(tenant.id, tenant.limits);
  } catch (err) {
    console.warn(JSON.stringify({ at: "tenants.limiter", tenant: tenant.id, error: String(err) }));
    throw new HttpError(503, "limits_unavailable", "the tenant's limits could not be checked; retry shortly", {}, { "retry-after": "1" });
  }
  const headers = rateLimitHeaders(verdict);
  if (!verdict.ok) {
    throw new HttpError(429, verdict.reason, verdict.message, { tenant: tenant.id }, { ...headers, "retry-after": String(verdict.retryAfterS) });
  }
  const lease = verdict.lease;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    waitUntil(tenantLimiter(env, tenant.id).release(lease).catch(() => {}));
  };
  return {
    headers,
    release,
    holdUntil: async (until) => {
      const timer = setInterval(() => void tenantLimiter(env, tenant.id).renew(lease).catch(() => {}), LEASE_TTL_MS / 3);
      try {
        await until;
      } finally {
        clearInterval(timer);
        release();
      }
    },
  };
}
