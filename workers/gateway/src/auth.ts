import { createMiddleware } from "hono/factory";
import { CSRF_HEADER, SESSION_COOKIE, cookieValue, tokenPrint, verifySession } from "./console/session";
import { HttpError } from "./errors";
import { hasRole, type Role } from "./roles";
import { safeHeader } from "./safe-header";

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

export type { Role } from "./roles";

export type AdminVariables = { role: Role; actor: string };

/** Which role a token belongs to; every configured token is compared, in constant time. */
export async function roleOf(env: Env, presented: string): Promise<Role | null> {
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
    const session = presented === null ? cookieValue(c.req.header("cookie"), SESSION_COOKIE) : null;
    if (presented === null && session === null) throw new HttpError(401, "unauthorized", "send Authorization: Bearer <token>", {}, { "www-authenticate": "Bearer" });
    const role = presented !== null ? await roleOf(c.env, presented) : await sessionRole(c.env, c.req.raw, session ?? "");
    if (role === null) throw new HttpError(401, "unauthorized", presented !== null ? "the token is not valid" : "the console session is not valid; sign in again", {}, { "www-authenticate": "Bearer" });
    if (!hasRole(role, minimum)) throw new HttpError(403, "forbidden", `this needs the ${minimum} role; the token has ${role}`);
    const who = (safeHeader(c, "x-meridian-actor") ?? "").slice(0, 100);
    c.set("role", role);
    c.set("actor", who ? `${role}:${who}` : role);
    await next();
  });
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The role of a console session cookie, or null. The session ends when it expires or when the
 * role's token changes. A cookie-authenticated write must come from this origin and carry the
 * session's CSRF token in x-meridian-csrf (403 otherwise): SameSite=Strict alone is not trusted.
 */
async function sessionRole(env: Env, request: Request, cookie: string): Promise<Role | null> {
  const adminToken = env.ADMIN_TOKEN ?? "";
  const session = await verifySession(adminToken, cookie, Date.now());
  if (session === null) return null;
  const token = { admin: env.ADMIN_TOKEN, editor: env.EDITOR_TOKEN, viewer: env.VIEWER_TOKEN }[session.role];
  if (token === undefined || token.length < 16 || !(await timingSafeEqualStrings(await tokenPrint(token), session.tokenPrint))) return null;
  if (!SAFE_METHODS.has(request.method)) assertSameOriginWrite(request, session.csrf);
  return session.role;
}

/** Origin (when the browser sends it) must be this origin, and the CSRF header must match. */
export function assertSameOriginWrite(request: Request, csrf: string | null): void {
  const origin = request.headers.get("origin");
  if (origin !== null && origin !== new URL(request.url).origin) throw new HttpError(403, "csrf_rejected", "cross-origin writes with the console session are refused");
  const fetchSite = request.headers.get("sec-fetch-site");
  if (fetchSite !== null && fetchSite !== "same-origin" && fetchSite !== "none") throw new HttpError(403, "csrf_rejected", "cross-site writes with the console session are refused");
  if (csrf !== null && request.headers.get(CSRF_HEADER) !== csrf) throw new HttpError(403, "csrf_rejected", `a console write needs the session's ${CSRF_HEADER} header`);
}

