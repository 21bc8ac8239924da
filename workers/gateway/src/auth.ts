import { createMiddleware } from "hono/factory";
import type { Env } from "./env";
import { HttpError } from "./errors";

const encoder = new TextEncoder();

/**
 * Constant-time string comparison: both sides are hashed first so the comparison runs over
 * equal-length digests and leaks neither content nor length.
 */
export async function timingSafeEqualStrings(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}

export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}

/** Admin API guard: 401 without a valid token; 503 when no token is configured (fail closed). */
export const requireAdmin = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  const configured = c.env.ADMIN_TOKEN;
  if (configured === undefined || configured.length < 16) {
    throw new HttpError(503, "admin_disabled", "ADMIN_TOKEN is not configured (at least 16 characters)");
  }
  const presented = bearerToken(c.req.header("authorization"));
  if (presented === null) throw new HttpError(401, "unauthorized", "send Authorization: Bearer <admin token>", {}, { "www-authenticate": "Bearer" });
  if (!(await timingSafeEqualStrings(presented, configured))) {
    throw new HttpError(401, "unauthorized", "the admin token is not valid", {}, { "www-authenticate": "Bearer" });
  }
  await next();
});
