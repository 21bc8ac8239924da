import { createMiddleware } from "hono/factory";
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

export type Role = "viewer" | "editor" | "admin";
const RANK: Record<Role, number> = { viewer: 1, editor: 2, admin: 3 };

export type AdminVariables = { role: Role; actor: string };

/** Which role a token belongs to; every configured token is compared, in constant time. */
async function roleOf(env: Env, presented: string): Promise<Role | null> {
  const candidates: [Role, string | undefined][] = [["admin", env.ADMIN_TOKEN], ["editor", env.EDITOR_TOKEN], ["viewer", env.VIEWER_TOKEN]];
  const matches = await Promise.all(candidates.map(async ([role, token]) => (token !== undefined && token.length >= 16 && (await timingSafeEqualStrings(presented, token)) ? role : null)));
  return matches.find((m) => m !== null) ?? null;
}

/**
 * Admin API guard. 401: no token or an unknown one. 403: a valid token whose role is too
 * low. 503: no admin token configured at all (the admin API fails closed).
 * The actor recorded in the audit log is the role plus the optional x-meridian-actor header.
 */
export function requireRole(minimum: Role) {
  return createMiddleware<{ Bindings: Env; Variables: AdminVariables }>(async (c, next) => {
    if (c.env.ADMIN_TOKEN === undefined || c.env.ADMIN_TOKEN.length < 16) {
      throw new HttpError(503, "admin_disabled", "ADMIN_TOKEN is not configured (at least 16 characters)");
    }
    const presented = bearerToken(c.req.header("authorization"));
    if (presented === null) throw new HttpError(401, "unauthorized", "send Authorization: Bearer <token>", {}, { "www-authenticate": "Bearer" });
    const role = await roleOf(c.env, presented);
    if (role === null) throw new HttpError(401, "unauthorized", "the token is not valid", {}, { "www-authenticate": "Bearer" });
    if (RANK[role] < RANK[minimum]) throw new HttpError(403, "forbidden", `this needs the ${minimum} role; the token has ${role}`);
    const who = (c.req.header("x-meridian-actor") ?? "").trim().slice(0, 100);
    c.set("role", role);
    c.set("actor", who ? `${role}:${who}` : role);
    await next();
  });
}

export function hasRole(role: Role, minimum: Role): boolean {
  return RANK[role] >= RANK[minimum];
}
